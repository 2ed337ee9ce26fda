//! The "add a new device" page (`mode=info`): choose an environment and a device name, get
//! the *Command File URL* for *Services/Update*, the set-up links for myPBX for iOS and
//! Android, and the set-up snippet for any other device (pure).

use super::html::{admin_url, e};
use crate::config::Config;
use crate::php::urlencode;
use std::fmt::Write;

/// The device commands that point a device at this server (what the links carry).
pub fn setup_commands(update_url: &str, env: &str, devname: &str) -> String {
    // "ser" first: some iOS versions garble the first command; it does no harm otherwise
    format!(
        "ser\r\nconfig add UP1 /url {update_url}?env={} /poll 1\r\nconfig add CMD0 /name {}\r\nconfig write\r\nconfig activate\r\nmod cmd UP1 poll\r\n",
        urlencode(env.as_bytes()),
        urlencode(devname.as_bytes())
    )
}

/// The environments offered, sorted.
pub fn environments(cfg: &Config) -> Vec<String> {
    let mut envs: Vec<String> = cfg.environments.iter().map(|e| e.id.clone()).collect();
    envs.sort();
    envs.dedup();
    envs
}

/// The body of the page. `base` is `scheme://host/prefix` as the browser reached us; `env`
/// and `devname` come from the form (`None` before it was sent).
pub fn render_body(
    cfg: &Config,
    prefix: &str,
    base: &str,
    env: Option<&str>,
    devname: &str,
) -> String {
    let envs = environments(cfg);
    let env = env
        .filter(|e| envs.iter().any(|x| x == e))
        .map(str::to_string)
        .or_else(|| envs.first().cloned())
        .unwrap_or_default();
    let mut h = String::from("<h1>Add a new device</h1>");
    let _ = write!(
        h,
        "<form class=\"info\" method=\"get\" action=\"{}\"><input type=\"hidden\" name=\"mode\" value=\"info\">\
<label>Environment <select name=\"env\" id=\"env\">",
        e(&admin_url(prefix, ""))
    );
    for x in &envs {
        let _ = write!(
            h,
            "<option value=\"{}\"{}>{}</option>",
            e(x),
            if *x == env { " selected" } else { "" },
            e(x)
        );
    }
    let _ = write!(
        h,
        "</select></label> <label>Device name <input name=\"devname\" id=\"devname\" value=\"{}\" size=\"40\" maxlength=\"32\" placeholder=\"the device's name\"></label> \
<button type=\"submit\">Update links</button></form>",
        e(devname)
    );
    let update_url = format!("{base}/update.php");
    let _ = write!(
        h,
        "<section><h2>Command File URL</h2><p>Enter this as <i>Command File URL</i> in <i>Services/Update</i> of the device, and <code>1</code> as <i>Interval [min]</i>:</p><pre id=\"cmdurl\">{}</pre></section>",
        e(&format!("{update_url}?env={}", urlencode(env.as_bytes())))
    );
    if devname.is_empty() {
        h.push_str("<p class=\"hint\">Enter a device name to get the set-up links for myPBX and the set-up snippet.</p>");
        return h;
    }
    let cmd = setup_commands(&update_url, &env, devname);
    let encoded = urlencode(cmd.as_bytes());
    let _ = write!(
        h,
        "<section><h2>myPBX for iOS</h2><p>Send this link to the user of <i>myPBX for iOS</i>: it sets the app up as <i>{name}</i>.</p>\
<p><a id=\"ios\" href=\"{}\">Set up myPBX for iOS as {name}</a></p></section>\
<section><h2>myPBX for Android</h2><p>Send this link to the user of <i>myPBX for Android</i>: it sets the app up as <i>{name}</i>.</p>\
<p><a id=\"android\" href=\"{}\">Set up myPBX for Android as {name}</a></p></section>\
<section><h2>Any other device</h2><p>Save these lines to a file and load it on the device with <i>Maintenance/Upload/Config</i>:</p><pre id=\"snippet\">{}</pre></section>",
        e(&format!("com.innovaphone.commands://{encoded}")),
        e(&format!("https://com.innovaphone.commands/{encoded}")),
        e(&cmd),
        name = e(devname)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::from_user_xml(r#"<config><master info=""/><environments><environment id="lab"/></environments></config>"#).expect("config")
    }

    #[test]
    fn commands_point_the_device_here() {
        assert_eq!(
            setup_commands("https://h/u/update.php", "lab", "Nico Mobile"),
            "ser\r\nconfig add UP1 /url https://h/u/update.php?env=lab /poll 1\r\nconfig add CMD0 /name Nico+Mobile\r\nconfig write\r\nconfig activate\r\nmod cmd UP1 poll\r\n"
        );
    }

    #[test]
    fn page_offers_environments_and_links() {
        let cfg = config();
        assert_eq!(environments(&cfg), vec!["default", "lab"]);
        let html = render_body(&cfg, "/u", "https://h/u", Some("lab"), "A <b>&'");
        assert!(html.contains("<option value=\"lab\" selected>lab</option>"));
        assert!(html.contains("https://h/u/update.php?env=lab"));
        assert!(html.contains("href=\"com.innovaphone.commands://ser%0D%0Aconfig+add+UP1"));
        assert!(html.contains("href=\"https://com.innovaphone.commands/ser%0D%0A"));
        assert!(html.contains("/name A+%3Cb%3E%26%27"));
        assert!(html.contains("as A &lt;b&gt;&amp;&#39;"));
        assert!(!html.contains("<b>&"));
        let html = render_body(&cfg, "/u", "https://h/u", Some("nope"), "");
        assert!(html.contains("<option value=\"default\" selected>"));
        assert!(!html.contains("commands://"));
    }
}
