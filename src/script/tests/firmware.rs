//! Firmware and boot code from the master device or pinned, and restricted times.

use super::*;

fn master(prot: &str, boot: &str) -> Resolved {
    Resolved {
        master: Some(crate::firmware::MasterResolution {
            notes: vec!["firmware build info cache is current".into()],
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

#[test]
fn firmware_needs_the_master_and_updates_old_devices() {
    let mut case = Case::new(r#"<config><master info="http://m/CMD0/box_info.xml"/></config>"#);
    assert_eq!(case.run(SN_POLL), Outcome::Need(Need::Master));
    case.resolved = master("130178", "130112");
    let out = case.poll(&format!("{SN_POLL}&PROT=130100&BOOT=130112"));
    let c = commands(&out);
    assert_eq!(
        c[0],
        "mod cmd UP0 prot http://upd.example/u/fw/130178/ ser 130178"
    );
    assert_eq!(c[1], "iresetn");
    let out = case.poll(&format!("{SN_POLL}&PROT=130178&BOOT=130112"));
    assert_eq!(commands(&out)[0], "config write");
    // a type in nofirmdev/nobootdev gets neither
    let out = case.poll("type=SWPHONE&sn=1&hwid=SWPHONE-1&ip=1");
    assert_eq!(commands(&out)[0], "config write");
}

#[test]
fn master_failures_bail_out_without_state() {
    let mut case =
        Case::new(r#"<config><master info="http://m/x"/><status dir="status"/></config>"#);
    case.resolved.master = Some(crate::firmware::MasterResolution {
        notes: vec![],
        info: Err("cannot access cache/master-info.xml".into()),
    });
    let out = case.poll(SN_POLL);
    assert!(
        text(&out).ends_with(
            "# cannot get cached PBX info: cannot access cache/master-info.xml - exit\r\n"
        )
    );
    assert!(out.state.is_none());
}

#[test]
fn pinned_firmware_and_bootcode_from_firmware() {
    let case = Case::new(
        r#"<config><master info="none" firmware="131000" bootcode="firmware"/></config>"#,
    );
    let out = case.poll(SN_POLL);
    let c = commands(&out);
    assert_eq!(
        c[0],
        "mod cmd UP0 prot http://upd.example/u/fw/131000/ ser 131000"
    );
    assert_eq!(
        c[1],
        "mod cmd UP0 boot http://upd.example/u/fw/131000/ ser 131000"
    );
    let case = Case::new(r#"<config><master info="none" firmware="master"/></config>"#);
    let out = case.poll(SN_POLL);
    assert!(
        text(&out).ends_with("# Cannot use firmware='master' with no info available - exit\r\n")
    );
}

#[test]
fn restricted_times_skip_allow_while_staging() {
    let case = Case::new(
        r#"<config><master info=""/><times allow="22,23" initial="1" forcestaging="true"/></config>"#,
    );
    let first = case.poll(SN_POLL);
    assert!(
        commands(&first).contains(&"mod cmd UP1 times  /initial 1".to_string()),
        "{}",
        text(&first)
    );
    let last = case.poll(&format!("phase=update&polling=5&{SN_POLL}"));
    assert!(commands(&last).contains(&"mod cmd UP1 times  /allow 22,23 /initial 1".to_string()));
}
