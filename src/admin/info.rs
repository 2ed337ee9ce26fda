//! The "add a new device" page (`mode=info`): choose an environment and a device name, get
//! the *Command File URL* for *Services/Update*, the set-up links for myPBX for iOS and
//! Android, and the set-up snippet for any other device (pure).

use super::html::{Text, admin_url};
use crate::config::Config;
use crate::php::urlencode;
use maud::{Markup, html};

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
    let update_url = format!("{base}/update.php");
    let cmd_url = format!("{update_url}?env={}", urlencode(env.as_bytes()));
    html! {
        h1 { "Add a new device" }
        form class="info" method="get" action=(admin_url(prefix, "")) {
            input type="hidden" name="mode" value="info";
            label {
                "Environment "
                select name="env" id="env" {
                    @for x in &envs {
                        option value=(Text(x)) selected[*x == env] { (Text(x)) }
                    }
                }
            }
            " "
            label {
                "Device name "
                input name="devname" id="devname" value=(Text(devname)) size="40" maxlength="32" placeholder="the device's name";
            }
            " "
            button type="submit" { "Update links" }
        }
        section {
            h2 { "Command File URL" }
            p {
                "Enter this as " i { "Command File URL" } " in " i { "Services/Update" }
                " of the device, and " code { "1" } " as " i { "Interval [min]" } ":"
            }
            pre id="cmdurl" { (Text(&cmd_url)) }
        }
        @if devname.is_empty() {
            p class="hint" { "Enter a device name to get the set-up links for myPBX and the set-up snippet." }
        } @else {
            (setup_links(&setup_commands(&update_url, &env, devname), devname))
        }
    }
    .into_string()
}

/// The set-up links for myPBX and the snippet for other devices that run `cmd`.
fn setup_links(cmd: &str, devname: &str) -> Markup {
    let encoded = urlencode(cmd.as_bytes());
    let apps = [
        (
            "iOS",
            "ios",
            format!("com.innovaphone.commands://{encoded}"),
        ),
        (
            "Android",
            "android",
            format!("https://com.innovaphone.commands/{encoded}"),
        ),
    ];
    html! {
        @for (os, id, href) in &apps {
            section {
                h2 { "myPBX for " (os) }
                p {
                    "Send this link to the user of " i { "myPBX for " (os) } ": it sets the app up as "
                    i { (Text(devname)) } "."
                }
                p { a id=(id) href=(Text(href)) { "Set up myPBX for " (os) " as " (Text(devname)) } }
            }
        }
        section {
            h2 { "Any other device" }
            p {
                "Save these lines to a file and load it on the device with "
                i { "Maintenance/Upload/Config" } ":"
            }
            pre id="snippet" { (Text(cmd)) }
        }
    }
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
