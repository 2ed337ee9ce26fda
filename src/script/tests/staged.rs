//! Snippet files staged by a rollout: a held device gets the previous version (content,
//! CHECK signature and the state's `version` are the previous version's); a device in an open
//! wave gets the live file and is told; a device out of scope gets the live file as today.

use super::*;
use crate::rollout::{Change, RolloutState, wave_of};
use md5::{Digest, Md5};

const FILE: &str = "update-all-default.txt";

fn user() -> String {
    format!(
        r#"{STATUS}<rollouts><rollout id="ntp" snippets="{FILE}" applies="phone" waves="50,100"/></rollouts></config>"#
    )
}

fn sn_in(cfg: &Config, wave: usize) -> String {
    (0..)
        .map(|i| format!("00-90-33-50-00-{i:02x}"))
        .find(|sn| wave_of(&cfg.rollouts[0], sn) == Some(wave))
        .expect("a serial")
}

fn poll(case: &Case, query: &str, views: &[(String, RolloutState)]) -> PollOutput {
    let mut previous = crate::rollout::kept::Previous::new();
    previous.insert(
        FILE.to_string(),
        Snippet::new(NOW - 5000, b"config change OLD\n".to_vec()),
    );
    let args = Args::parse(query);
    let input = PollInput {
        config: &case.config,
        args: &args,
        conn: &case.conn,
        script_url: "http://upd.example/u/update.php",
        state: &case.state,
        snippets: &case.snippets,
        certs: &CertFiles::default(),
        hook_configured: false,
        now: NOW,
        rollouts: views,
        previous: &previous,
    };
    match build(&input, &case.resolved) {
        Outcome::Done(o) => *o,
        Outcome::Need(n) => panic!("needs {n:?}"),
    }
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn version_recorded(out: &PollOutput) -> Option<String> {
    let state = out.state.as_ref()?;
    let c = state
        .root
        .children_named("config")
        .find(|c| c.attr("filename") == Some(&format!("scripts/{FILE}")))?;
    c.attr("version").map(str::to_string)
}

#[test]
fn held_devices_get_the_previous_version_as_php_would_record_it() {
    let case = Case::new(&user()).snippet(FILE, 1000, "config change NEW\n");
    let views = vec![(
        "ntp".to_string(),
        RolloutState {
            opened: vec![NOW - 10],
            round: vec![(FILE.to_string(), NOW - 1000)],
            round_at: NOW - 10,
            ..RolloutState::default()
        },
    )];
    let (a, b) = (sn_in(&case.config, 0), sn_in(&case.config, 1));
    let q = |ty: &str, sn: &str| format!("type={ty}&sn={sn}&hwid={ty}-x&ip=10.0.0.5");

    // wave 1 is open: the new version, told
    let out = poll(&case, &q("IP232", &a), &views);
    assert!(
        commands(&out).contains(&"config change NEW".to_string()),
        "{}",
        text(&out)
    );
    assert!(matches!(&out.rollout_changes[..], [(id, Change::Told { .. })] if id == "ntp"));
    assert_eq!(version_recorded(&out), Some((NOW - 1000).to_string()));

    // wave 2 is not: the previous version, its CHECK and version, nothing recorded
    let out = poll(&case, &q("IP232", &b), &views);
    let c = commands(&out);
    assert!(
        c.contains(&"config change OLD".to_string()),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("config change NEW"));
    let sig = md5_hex("config change OLD");
    assert!(c.contains(&format!("mod cmd UP1 check ser {sig}")), "{c:?}");
    assert!(text(&out).contains("# rollout ntp: held, wave 2 (100%) is not open yet"));
    assert_eq!(version_recorded(&out), Some((NOW - 5000).to_string()));
    assert!(out.rollout_changes.is_empty());
    // with that CHECK nothing is delivered
    let out = poll(&case, &format!("{}&CHECK={sig}", q("IP232", &b)), &views);
    assert!(text(&out).contains(&format!("CHECK serial {sig} is good")));

    // out of scope (a gateway): the live file as today
    let out = poll(&case, &q("IP811", &b), &views);
    assert!(commands(&out).contains(&"config change NEW".to_string()));
    assert!(out.rollout_changes.is_empty());

    // a version the ticker has not staged yet: the previous one
    let idle = vec![("ntp".to_string(), RolloutState::default())];
    let out = poll(&case, &q("IP232", &a), &idle);
    assert!(commands(&out).contains(&"config change OLD".to_string()));
    assert!(text(&out).contains("waits for its round to begin"));
}

#[test]
fn builds_and_snippets_go_together_and_the_delivery_records_them() {
    let user = format!(
        r#"{STATUS}<master info="none" firmware="140000" bootcode="none"/><rollouts><rollout id="ntp" firmware="140010" snippets="{FILE}" applies="phone" waves="50,100"/></rollouts></config>"#
    );
    let case = Case::new(&user).snippet(FILE, 1000, "config change NEW\n");
    let views = vec![(
        "ntp".to_string(),
        RolloutState {
            opened: vec![NOW - 10],
            round: vec![(FILE.to_string(), NOW - 1000)],
            round_at: NOW - 10,
            ..RolloutState::default()
        },
    )];
    let (a, b) = (sn_in(&case.config, 0), sn_in(&case.config, 1));
    let q = |sn: &str, prot: &str| {
        format!("type=IP232&sn={sn}&hwid=IP232-x&ip=10.0.0.5&PROT={prot}&BOOT=1")
    };
    // the open wave on the old build: the build and the new version, not told yet (the
    // update resets the device before the files run)
    let out = poll(&case, &q(&a, "130000"), &views);
    let t = text(&out);
    assert!(
        t.contains(" ser 140010\r\n") && t.contains("config change NEW"),
        "{t}"
    );
    assert!(out.rollout_changes.is_empty(), "{:?}", out.rollout_changes);
    // on the new build: the new version, told once (by the delivery)
    let out = poll(&case, &q(&a, "140010"), &views);
    assert!(text(&out).contains("config change NEW"));
    assert!(
        matches!(&out.rollout_changes[..], [(id, Change::Told { .. })] if id == "ntp"),
        "{:?}",
        out.rollout_changes
    );
    // the closed wave: neither the build (nor the master's) nor the new version
    let out = poll(&case, &q(&b, "130000"), &views);
    let t = text(&out);
    assert!(
        !t.contains("mod cmd UP0 prot") && !t.contains("config change NEW"),
        "{t}"
    );
    assert!(t.contains("config change OLD"), "{t}");
    assert!(out.rollout_changes.is_empty());
}
