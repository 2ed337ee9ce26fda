//! Devices in a staged rollout's scope: the rollout's builds, or held with a comment; devices
//! out of scope, and configurations without rollouts, get the master's (pinned) builds.

use super::*;
use crate::rollout::{Change, RolloutState, wave_of};

const CFG: &str = r#"<config><master info="none" firmware="140000" bootcode="none"/>
    <rollouts><rollout id="r1" firmware="140010" applies="phone" waves="50,100"/></rollouts>
</config>"#;

fn sn_in(cfg: &Config, wave: usize) -> String {
    (0..)
        .map(|i| format!("00-90-33-50-00-{i:02x}"))
        .find(|sn| wave_of(&cfg.rollouts[0], sn) == Some(wave))
        .expect("a serial")
}

fn poll(case: &Case, ty: &str, sn: &str, rollouts: &[(String, RolloutState)]) -> PollOutput {
    let args = Args::parse(&format!(
        "type={ty}&sn={sn}&hwid={ty}-x&ip=10.0.0.5&PROT=130000&BOOT=130000"
    ));
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
        rollouts,
        previous: &Default::default(),
    };
    match build(&input, &case.resolved) {
        Outcome::Done(out) => *out,
        Outcome::Need(n) => panic!("needs {n:?}"),
    }
}

#[test]
fn a_rollout_tells_its_open_waves_and_holds_the_others() {
    let case = Case::new(CFG);
    let open = RolloutState {
        opened: vec![NOW - 10],
        ..RolloutState::default()
    };
    let views = vec![("r1".to_string(), open)];
    let (a, b) = (sn_in(&case.config, 0), sn_in(&case.config, 1));

    let out = poll(&case, "IP232", &a, &views);
    let t = text(&out);
    assert!(
        t.contains("mod cmd UP0 prot ") && t.contains(" ser 140010\r\n"),
        "{t}"
    );
    assert!(!t.contains("ser 140000"), "{t}");
    assert_eq!(
        out.rollout_changes,
        vec![(
            "r1".to_string(),
            Change::Told {
                sn: a.clone(),
                wave: 0,
                at: NOW
            }
        )]
    );

    let out = poll(&case, "IP232", &b, &views);
    let t = text(&out);
    assert!(!t.contains("mod cmd UP0 prot"), "{t}");
    assert!(
        t.contains("# rollout r1: held, wave 2 (100%) is not open yet\r\n"),
        "{t}"
    );
    assert!(out.rollout_changes.is_empty());

    // out of scope: the pinned build, as without rollouts
    let t = text(&poll(&case, "IP811", &a, &views));
    assert!(
        t.contains(" ser 140000\r\n") && !t.contains("rollout"),
        "{t}"
    );

    // no state yet (nothing opened): held
    let t = text(&poll(&case, "IP232", &a, &[]));
    assert!(
        t.contains("# rollout r1: held, wave 1 (50%) is not open yet"),
        "{t}"
    );
}

#[test]
fn without_rollouts_the_pinned_build_is_sent() {
    let case =
        Case::new(r#"<config><master info="none" firmware="140000" bootcode="none"/></config>"#);
    let t = text(&poll(&case, "IP232", "00-90-33-50-00-01", &[]));
    assert!(
        t.contains(" ser 140000\r\n") && !t.contains("rollout"),
        "{t}"
    );
}

#[test]
fn under_forcetrust_only_a_certificate_that_proves_the_serial_counts() {
    let user = r#"<config><master info="none" firmware="140000" bootcode="none"/>
    <customcerts dir="certs" CAname="Dev CA"/><times forcetrust="true"/>
    <rollouts><rollout id="r1" firmware="140010" applies="phone" waves="50,100"/></rollouts>
</config>"#;
    let mut case = Case::new(user);
    case.conn.https = true;
    let views = vec![(
        "r1".to_string(),
        RolloutState {
            opened: vec![NOW - 10],
            ..RolloutState::default()
        },
    )];
    let b = sn_in(&case.config, 0);
    let (a_hwid, b_hwid) = ("IP232-50-00-fe".to_string(), format!("IP232-{}", &b[9..]));
    let poll_as = |case: &mut Case, cn: &str, hwid: &str| {
        case.conn.client_cert = Some(crate::request::ClientCert {
            cn: cn.into(),
            issuer_cn: "Dev CA".into(),
        });
        let args = Args::parse(&format!(
            "type=IP232&sn={b}&hwid={hwid}&ip=10.0.0.5&PROT=130000&BOOT=130000"
        ));
        let input = PollInput {
            config: &case.config,
            args: &args,
            conn: &case.conn,
            script_url: "https://upd.example/u/update.php",
            state: &case.state,
            snippets: &case.snippets,
            certs: &CertFiles::default(),
            hook_configured: false,
            now: NOW,
            rollouts: &views,
            previous: &Default::default(),
        };
        match build(&input, &case.resolved) {
            Outcome::Done(out) => *out,
            Outcome::Need(n) => panic!("needs {n:?}"),
        }
    };
    // A's certificate (CN = A's hwid) with A's hwid and B's serial: refused, nothing counts
    let out = poll_as(&mut case, &a_hwid, &a_hwid);
    assert!(out.refused.is_some(), "{}", text(&out));
    assert!(out.rollout_changes.is_empty(), "{:?}", out.rollout_changes);
    assert!(!text(&out).contains("mod cmd UP0 prot"), "{}", text(&out));
    // B's own certificate, by hwid or by serial CN: told, counted
    for cn in [b_hwid.clone(), b.replace('-', "")] {
        let out = poll_as(&mut case, &cn, &b_hwid);
        assert!(out.refused.is_none(), "{}", text(&out));
        assert_eq!(
            out.rollout_changes,
            vec![(
                "r1".to_string(),
                Change::Told {
                    sn: b.clone(),
                    wave: 0,
                    at: NOW
                }
            )],
            "{cn}"
        );
    }
}
