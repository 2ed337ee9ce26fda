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
fn without_notifications_the_rescan_sees_a_changed_user_config() {
    use crate::watch::{FsWatch, WatchOptions};
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::create_dir_all(dir.path().join("config")).expect("mkdir");
    let user = dir.path().join("config/user-config.xml");
    std::fs::write(&user, r#"<config><status dir="one"/></config>"#).expect("write");
    let opts = WatchOptions {
        notify: false,
        rescan: std::time::Duration::from_millis(20),
    };
    let watch = std::sync::Arc::new(FsWatch::start(dir.path(), &opts));
    let store = ConfigStore::watched(dir.path(), watch.freshness());
    let dir_of = |s: &ConfigStore| s.get().expect("config").status_dir().map(str::to_string);
    assert_eq!(dir_of(&store).as_deref(), Some("one"));
    std::fs::write(&user, r#"<config><status dir="two"/></config>"#).expect("edit");
    let mut seen = None;
    for _ in 0..500 {
        seen = dir_of(&store);
        if seen.as_deref() == Some("two") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(seen.as_deref(), Some("two"));
}
