//! The master device stand-in (README §3): plain HTTP on a loopback port;
//! every GET whose path (without query) ends in `box_info.xml` gets `200` with
//! the case's `master/box_info.xml`, anything else `404`. Every request target
//! is logged.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub struct Master {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Master {
    /// Serves `box_info` on `listener` until dropped.
    pub fn start(listener: TcpListener, box_info: Vec<u8>) -> Result<Master, String> {
        let port = listener
            .local_addr()
            .map_err(|e| format!("master stand-in address: {e}"))?
            .port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let box_info = Arc::new(box_info);
        let thread = {
            let (log, stop) = (log.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let (log, box_info) = (log.clone(), box_info.clone());
                    std::thread::spawn(move || serve(stream, &log, &box_info));
                }
            })
        };
        Ok(Master {
            port,
            log,
            stop,
            thread: Some(thread),
        })
    }

    /// The request targets asked for so far, in order.
    pub fn log(&self) -> Vec<String> {
        match self.log.lock() {
            Ok(log) => log.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(mut stream: TcpStream, log: &Mutex<Vec<String>>, box_info: &[u8]) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && !buf.windows(2).any(|w| w == b"\n\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if buf.len() > 64 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let request_line = text.lines().next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next());
    let Some(target) = target else {
        return; // not a request (e.g. a port probe)
    };
    if let Ok(mut log) = log.lock() {
        log.push(target.to_string());
    }
    let path = target.split('?').next().unwrap_or_default();
    let (status, content_type, body): (&str, &str, &[u8]) =
        if method == "GET" && path.ends_with("box_info.xml") {
            ("200 OK", "text/xml", box_info)
        } else {
            ("404 Not Found", "text/plain", b"not found\n")
        };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.flush();
}
