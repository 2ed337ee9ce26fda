use super::*;
use crate::php;

fn load(user: &str) -> Result<Config, ConfigError> {
    Config::from_user_xml(user)
}

#[test]
fn builtin_defaults_load() {
    let c = load("<config/>").expect("defaults");
    assert_eq!(c.phases, vec!["update"]);
    assert_eq!(c.first_environment(), "default");
    assert_eq!(c.times.grace, 90);
    assert_eq!(c.times.polling, php::Value::Str("5".into()));
    assert_eq!(c.times.interval, 15);
    assert_eq!(c.times.httpsport, None);
    assert_eq!(c.times.httpsurlmod.as_deref(), Some("!mtls/!!i"));
    assert!(c.times.check);
    assert!(c.customcerts.is_none());
    assert_eq!(c.classes.len(), 12);
    assert_eq!(
        c.classes_of("IP232"),
        vec!["phone", "pre_opus_phone", "phone_newui", "ip232"]
    );
    assert_eq!(c.status.dir, None);
    assert_eq!(c.stdarg("sn"), Some(Some("#m")));
    assert_eq!(c.stdarg("PROT"), Some(None));
    assert_eq!(c.stdarg("env"), None);
}

#[test]
fn phases_sort_by_seq_and_attributes_overwrite() {
    let c = load(
        r#"<config><master info="x"/><phases><phase id="staging" seq="100"/></phases></config>"#,
    )
    .expect("load");
    assert_eq!(c.phases, vec!["staging", "update"]);
    assert_eq!(c.master.info, "x");
    assert_eq!(c.master.expire, 3600);
}

#[test]
fn hidden_final_phase_for_restricted_times() {
    let c = load(r#"<config><times allow="22,23" forcestaging="true"/></config>"#).expect("load");
    assert_eq!(c.phases, vec!["_first_update", "update"]);
    assert_eq!(c.fake_last_phase.as_deref(), Some("_first_update"));
    // forcestaging only from the defaults does not add it
    let c = load(r#"<config><times allow="22,23"/></config>"#).expect("load");
    assert_eq!(c.phases, vec!["update"]);
}

#[test]
fn merges_by_id_and_appends_models() {
    let c = load(r#"<config><classes><class id="lab"><model>IP232</model></class><class id="phone"><model>ip999</model></class></classes></config>"#)
        .expect("load");
    assert_eq!(
        c.classes_of("ip232"),
        vec!["phone", "pre_opus_phone", "phone_newui", "lab", "ip232"]
    );
    assert_eq!(c.classes_of("IP999"), vec!["phone", "ip999"]);
}

#[test]
fn single_tags_merge_and_leaf_text_is_replaced() {
    let c = load(
        r#"<config><queries><query id="admin"><applies>*</applies></query></queries></config>"#,
    )
    .expect("load");
    let admin = c
        .queries
        .list
        .iter()
        .find(|q| q.id == "admin")
        .expect("admin");
    assert_eq!(admin.cmd.as_deref(), Some("mod cmd CMD0 xml-info"));
    assert_eq!(
        admin.applies,
        vec![Applies {
            value: "*".into(),
            env: false
        }]
    );
}

#[test]
fn user_tag_without_id_where_ids_are_used_is_an_error() {
    let e =
        load(r#"<config><classes><class><model>x</model></class></classes></config>"#).unwrap_err();
    assert_eq!(
        e.php_message,
        "must have 'id' attribute in 'class' tag in user-config.xml"
    );
}

#[test]
fn validations_match_php_messages() {
    let cases = [
        (
            r#"<phases><phase id="all" seq="1"/></phases>"#,
            "config: phase name 'all' not allowed",
        ),
        (
            r#"<phases><phase id="_" seq="1"/></phases>"#,
            "config: phase name '_' not allowed",
        ),
        (
            r#"<phases><phase id="a-b" seq="1"/></phases>"#,
            "config: phase named 'a-b': no dash allowed in name",
        ),
        (
            r#"<environments><environment id="all"/></environments>"#,
            "config: environment name 'all' not allowed",
        ),
        (
            r#"<environments><environment id="x"><implies>y</implies></environment></environments>"#,
            "implication 'y' in 'x' must be a defined environment",
        ),
        (
            r#"<classes><class id="a-b"/></classes>"#,
            "config: class named 'a-b': no dash allowed in name",
        ),
    ];
    for (xml, msg) in cases {
        let e = load(&format!("<config>{xml}</config>")).unwrap_err();
        assert_eq!(e.php_message, msg, "{xml}");
    }
}

#[test]
fn duplicate_ids_are_reported() {
    // two environments with the same id are both added when the user config has several
    let e = load(
        r#"<config><environments><environment id="default"/><environment id="x"/><environment id="x"/></environments></config>"#,
    );
    // merge by id folds the duplicates into one, so PHP accepts this
    assert!(e.is_ok());
    let defaults = Source {
        name: "config.xml".into(),
        bytes: br#"<config><master info=""/><fwstorage url="fw/"/><phases><phase id="a" seq="1"/><phase id="a" seq="2"/></phases><environments><environment id="e"/></environments></config>"#.to_vec(),
    };
    let e = Config::from_sources(&defaults, None).unwrap_err();
    assert_eq!(
        e.php_message,
        "config: phase named 'a': duplicate definition"
    );
}

#[test]
fn missing_master_info_and_fwstorage() {
    let defaults = Source {
        name: "config.xml".into(),
        bytes: br#"<config><fwstorage url="fw/"/><phases><phase id="a" seq="1"/></phases><environments><environment id="e"/></environments></config>"#.to_vec(),
    };
    let e = Config::from_sources(&defaults, None).unwrap_err();
    assert_eq!(
        e.php_message,
        "config: master tag or info attribute missing"
    );
}

#[test]
fn customcerts_need_a_dir() {
    let c = load(r#"<config><customcerts dir="certs" CAname="A, B" CSRdn-o="Müller"/></config>"#)
        .expect("load");
    let cc = c.customcerts.expect("customcerts");
    assert_eq!(cc.ca_names, vec!["A", "B"]);
    assert_eq!(cc.csr_attr("dn-o"), b"M\xfcller");
    assert_eq!(cc.csr_attr("key"), b"2048-bit");
    assert_eq!(cc.renew_days, 90);
}

#[test]
fn broken_user_config_names_the_file() {
    let e = load("<config>").unwrap_err();
    assert_eq!(e.file, "config/user-config.xml");
    assert!(
        e.php_message
            .starts_with("cannot parse config/user-config.xml")
    );
}

#[test]
fn a_single_tag_merged_by_name_keeps_its_text() {
    let c = load(
        r#"<config><queries><query id="admin"><cmd>mod cmd OTHER</cmd></query></queries></config>"#,
    )
    .expect("load");
    let admin = c
        .queries
        .list
        .iter()
        .find(|q| q.id == "admin")
        .expect("admin");
    assert_eq!(admin.cmd.as_deref(), Some("mod cmd CMD0 xml-info"));
    // a tag the default does not have gets the user's text
    let c = load(
        r#"<config><queries><query id="mine"><cmd>mod cmd MINE</cmd></query></queries></config>"#,
    )
    .expect("load");
    let mine = c
        .queries
        .list
        .iter()
        .find(|q| q.id == "mine")
        .expect("mine");
    assert_eq!(mine.cmd.as_deref(), Some("mod cmd MINE"));
}

#[test]
fn a_repeated_id_keeps_the_first_implies_and_model() {
    let c = load(
        r#"<config><environments><environment id="a"/><environment id="b"/><environment id="x"><implies>a</implies></environment><environment id="x"><implies>b</implies></environment></environments>
        <classes><class id="lab"><model>m1</model></class><class id="lab"><model>m2</model></class></classes></config>"#,
    )
    .expect("load");
    assert_eq!(c.environment("x").expect("x").implies, vec!["a"]);
    assert_eq!(c.classes_of("m1"), vec!["lab", "m1"]);
    assert_eq!(c.classes_of("m2"), vec!["m2"]);
}

#[test]
fn ids_merge_and_match_with_php_loose_equality() {
    let c = load(
        r#"<config><phases><phase id="10" seq="2"/><phase id="20" seq="3"/></phases><environments><environment id="1"/><environment id="1.0" x="y"/></environments></config>"#,
    )
    .expect("load");
    // "1.0" merged into "1" (PHP's == on the ids); its attributes, id included, overwrite
    assert_eq!(
        c.environments
            .iter()
            .filter(|e| e.id.starts_with('1'))
            .count(),
        1
    );
    assert!(c.phase_exists("1e1"));
    assert!(c.phase_exists(" 10"));
    assert!(!c.phase_exists("10x"));
    assert_eq!(c.next_phase("1e1"), Some("20"));
    assert_eq!(c.next_phase("20.0"), Some("update"));
    assert_eq!(c.environment("1").map(|e| e.id.as_str()), Some("1.0"));
    assert_eq!(c.environment(" 1").map(|e| e.id.as_str()), Some("1.0"));
    assert!(c.environment("01x").is_none());
}

#[test]
fn next_phase_skips_phases_equal_to_the_current_one() {
    let defaults = Source {
        name: "config.xml".into(),
        bytes: br#"<config><master info=""/><fwstorage url="fw/"/><phases><phase id="1" seq="1"/><phase id="2" seq="2"/><phase id="3" seq="3"/></phases><environments><environment id="e"/></environments></config>"#.to_vec(),
    };
    let c = Config::from_sources(&defaults, None).expect("load");
    assert_eq!(c.next_phase("1.0"), Some("2"));
    assert_eq!(c.next_phase("3"), None);
    assert_eq!(c.next_phase("4"), None);
}

#[test]
fn master_firmware_and_bootcode_zero_are_empty() {
    let c = load(r#"<config><master firmware="0" bootcode="0"/></config>"#).expect("load");
    assert_eq!(c.master.firmware, "master");
    assert_eq!(c.master.bootcode, "master");
    let c = load(r#"<config><master firmware="00" bootcode=""/></config>"#).expect("load");
    assert_eq!(c.master.firmware, "00");
    assert_eq!(c.master.bootcode, "master");
}

#[test]
fn integer_settings_are_php_8_numeric_strings() {
    let c = load(
        r#"<config><master expire="1e3"/><times interval="1e1" grace=" 2e2"/><backup dir="b" nbackups="3.0" scfg="s" minage="1e2"/>
        <status dir="st" expire="1e4" missing="5e1" refresh="6e1" logkeep="7e1"/><customcerts dir="c" renew="1e1"/></config>"#,
    )
    .expect("load");
    assert_eq!(c.master.expire, 1000);
    assert_eq!(c.times.interval, 10);
    assert_eq!(c.times.grace, 200);
    assert_eq!(c.backup.nbackups, Some(3));
    assert_eq!(c.backup.minage, 100);
    assert_eq!(c.status.expire, 10_000);
    assert_eq!(c.status.missing, 50);
    assert_eq!(c.status.refresh, 60);
    assert_eq!(c.status.logkeep, 70);
    assert_eq!(c.customcerts.expect("cc").renew_days, 10);
}
