//! Unit tests of the update script builder. Expectations are derived by hand from the PHP
//! server's rules (`update.php`), not from this implementation's output.

mod candidates;
mod delivery;
mod device;
mod firmware;
mod https;
mod replay;
mod rollouts;
mod staged;
mod urlmod;

use super::candidates::{candidate_names, environments};
use super::urlmod::switch_to_https;
use super::*;
use crate::config::Config;
use crate::firmware::BoxInfo;
use crate::snippets::Snippet;
use crate::{php, state};
use std::collections::HashMap;
use std::sync::Arc;

const NOW: i64 = 2_000_000_000;
const SN_POLL: &str = "type=IP232&sn=00-90-33-30-00-af&hwid=IP232-30-00-af&ip=10.0.0.5";

fn config(user: &str) -> Config {
    Config::from_user_xml(user).expect("config")
}

struct Case {
    config: Config,
    snippets: HashMap<String, Snippet>,
    state: Loaded,
    conn: ConnInfo,
    resolved: Resolved,
    hook: bool,
}

impl Case {
    fn new(user: &str) -> Case {
        Case {
            config: config(user),
            snippets: HashMap::new(),
            state: Loaded::Missing,
            conn: ConnInfo::plain("upd.example", 80),
            resolved: Resolved::default(),
            hook: false,
        }
    }

    fn snippet(mut self, name: &str, age: i64, content: &str) -> Case {
        self.snippets.insert(
            name.to_string(),
            Snippet::new(NOW - age, content.as_bytes().to_vec()),
        );
        self
    }

    fn run(&self, query: &str) -> Outcome {
        let args = Args::parse(query);
        let input = PollInput {
            config: &self.config,
            args: &args,
            conn: &self.conn,
            script_url: "http://upd.example/u/update.php",
            state: &self.state,
            snippets: &self.snippets,
            certs: &CertFiles::default(),
            hook_configured: self.hook,
            now: NOW,
            rollouts: &[],
            previous: &Default::default(),
        };
        build(&input, &self.resolved)
    }

    fn poll(&self, query: &str) -> PollOutput {
        match self.run(query) {
            Outcome::Done(o) => *o,
            Outcome::Need(n) => panic!("unexpected need {n:?}"),
        }
    }
}

fn text(o: &PollOutput) -> String {
    String::from_utf8_lossy(&o.body).into_owned()
}

fn commands(o: &PollOutput) -> Vec<String> {
    text(o)
        .split("\r\n")
        .flat_map(|l| l.split('\n'))
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect()
}

const STATUS: &str = r#"<config><master info=""/><status dir="status"/>"#;
