//! The replay loop: needs answered by a resolver, one input (and clock) for every round, and
//! the bound on the number of rounds.

use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A resolver with fixed answers that counts how often it was asked.
#[derive(Default)]
struct Fixed {
    asked: AtomicUsize,
}

impl Resolver for Fixed {
    async fn master(&self) -> MasterResolution {
        self.asked.fetch_add(1, Ordering::SeqCst);
        firmware_master("13r1", "13r1")
            .master
            .unwrap_or_else(|| panic!("master"))
    }

    async fn rdns(&self, _ip: &str) -> Option<String> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        None
    }

    async fn hook(&self, _state: &crate::state::DeviceState) -> HookAnswer {
        self.asked.fetch_add(1, Ordering::SeqCst);
        HookAnswer {
            pre: vec![b"pre1".to_vec()],
            standard: true,
            ..Default::default()
        }
    }
}

fn firmware_master(prot: &str, boot: &str) -> Resolved {
    Resolved {
        master: Some(MasterResolution {
            notes: Vec::new(),
            info: Ok(BoxInfo {
                label: "x".into(),
                prot: prot.into(),
                boot: boot.into(),
                hw: "h".into(),
            }),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn needs_are_resolved_and_the_script_built_again() {
    let mut case = Case::new(r#"<config><master info="http://m/CMD0/box_info.xml"/></config>"#)
        .snippet("update-all-default.txt", 1000, "config change A /x 1\n");
    case.hook = true;
    let args = Args::parse(&format!("{SN_POLL}&PROT=13r1&BOOT=13r1"));
    let input = PollInput {
        config: &case.config,
        args: &args,
        conn: &case.conn,
        script_url: "http://upd.example/u/update.php",
        state: &case.state,
        snippets: &case.snippets,
        certs: &CertFiles::default(),
        hook_configured: true,
        now: NOW,
        rollouts: &[],
        previous: &Default::default(),
    };
    let resolver = Fixed::default();
    let out = build_resolving(&input, &resolver).await.expect("answered");
    // master, then hook: two needs, three rounds
    assert_eq!(resolver.asked.load(Ordering::SeqCst), 2);
    assert_eq!(&commands(&out)[0..2], ["pre1", "config change A /x 1"]);
    // the same as one run with everything resolved
    let mut all = firmware_master("13r1", "13r1");
    all.hook = Some(resolver.hook(&Default::default()).await);
    match build(&input, &all) {
        Outcome::Done(direct) => assert_eq!(*direct, out),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_script_that_keeps_needing_stops_after_max_rounds() {
    let resolver = Fixed::default();
    let mut rounds = 0;
    let r = replay(
        |_| {
            rounds += 1;
            Outcome::Need(Need::Master)
        },
        &resolver,
    )
    .await;
    assert_eq!(r, Err(ReplayError::TooManyRounds(Need::Master)));
    assert_eq!(rounds, MAX_ROUNDS);
    // the last need is not resolved any more
    assert_eq!(resolver.asked.load(Ordering::SeqCst), MAX_ROUNDS - 1);
}

#[tokio::test]
async fn every_round_within_the_bound_is_allowed() {
    let resolver = Fixed::default();
    let mut rounds = 0;
    let r = replay(
        |_| {
            rounds += 1;
            if rounds < MAX_ROUNDS {
                Outcome::Need(Need::Rdns("10.0.0.5".into()))
            } else {
                Outcome::Done(Box::new(PollOutput::internal_error()))
            }
        },
        &resolver,
    )
    .await;
    assert_eq!(r, Ok(PollOutput::internal_error()));
    assert_eq!(rounds, MAX_ROUNDS);
}
