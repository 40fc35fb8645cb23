#![allow(clippy::unwrap_used, clippy::expect_used)] // test code, helpers included
use autoencoder::Config;

#[test]
fn presets_have_magentas_and_our_sizes() {
    let n = Config::nsynth();
    assert_eq!(
        (
            n.num_stages,
            n.num_layers,
            n.filter_length,
            n.width,
            n.skip_width
        ),
        (10, 30, 3, 512, 256)
    );
    assert_eq!(
        (
            n.ae_num_stages,
            n.ae_num_layers,
            n.ae_filter_length,
            n.ae_width,
            n.ae_bottleneck_width,
            n.ae_hop_length
        ),
        (10, 30, 3, 128, 16, 512)
    );
    let s = Config::small();
    assert_eq!(
        (
            s.num_stages,
            s.num_layers,
            s.filter_length,
            s.width,
            s.skip_width
        ),
        (10, 20, 3, 64, 128)
    );
    assert_eq!(
        (
            s.ae_num_stages,
            s.ae_num_layers,
            s.ae_filter_length,
            s.ae_width,
            s.ae_bottleneck_width,
            s.ae_hop_length
        ),
        (10, 20, 3, 64, 16, 512)
    );
    assert_eq!(Config::preset("nsynth").unwrap(), n);
    assert_eq!(Config::preset("small").unwrap(), s);
    n.validate().unwrap();
    s.validate().unwrap();
}

#[test]
fn json_uses_exactly_magentas_keys_and_round_trips() {
    let json = serde_json::to_value(Config::nsynth()).unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "ae_bottleneck_width",
            "ae_filter_length",
            "ae_hop_length",
            "ae_num_layers",
            "ae_num_stages",
            "ae_width",
            "filter_length",
            "num_layers",
            "num_stages",
            "skip_width",
            "width"
        ]
    );
    let text = serde_json::to_string(&Config::small()).unwrap();
    assert_eq!(Config::from_json(&text).unwrap(), Config::small());
}

#[test]
fn derived_sizes() {
    let n = Config::nsynth();
    // 3 × (1 + 2 + … + 512) = 3069 per stack of 10, three stacks, plus startconv's 2 and
    // the current sample.
    assert_eq!(n.receptive_field(), 1 + 2 + 3 * 2 * 1023);
    assert_eq!(n.dilation(0), 1);
    assert_eq!(n.dilation(9), 512);
    assert_eq!(n.dilation(10), 1);
    // Magenta's published checkpoint has about 10.7 M weights... in the decoder alone the
    // dilated convolutions hold 30 × 3 × 512 × 1024.
    assert!(n.parameter_count() > 30 * 3 * 512 * 1024);
    let s = Config::small();
    // About 1.2 M: small enough to ship inside the binary.
    let p = s.parameter_count();
    assert!((1_000_000..1_500_000).contains(&p), "{p}");
}

fn check_invalid(json_patch: (&str, serde_json::Value), needle: &str) {
    let mut json = serde_json::to_value(Config::small()).unwrap();
    let obj = json.as_object_mut().unwrap();
    if json_patch.1.is_null() {
        obj.remove(json_patch.0);
    } else {
        obj.insert(json_patch.0.to_string(), json_patch.1.clone());
    }
    let err = Config::from_json(&json.to_string())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(needle),
        "{json_patch:?}: error {err:?} does not mention {needle:?}"
    );
}

#[test]
fn invalid_configs_are_rejected_with_a_clear_error() {
    use serde_json::json;
    check_invalid(("width", json!(0)), "width must be at least 1");
    check_invalid(
        ("ae_hop_length", json!(0)),
        "ae_hop_length must be at least 1",
    );
    check_invalid(("num_stages", json!(0)), "num_stages must be at least 1");
    check_invalid(
        ("filter_length", json!(0)),
        "filter_length must be at least 1",
    );
    check_invalid(("num_stages", json!(40)), "num_stages = 40 is larger");
    check_invalid(("width", json!(1_000_000)), "width = 1000000 is larger");
    check_invalid(
        ("num_layers", json!(100_000)),
        "num_layers = 100000 is larger",
    );
    check_invalid(("width", json!(-3)), "invalid value");
    check_invalid(("width", json!("wide")), "invalid type");
    check_invalid(("widht", json!(64)), "unknown field `widht`");
    check_invalid(
        ("skip_width", serde_json::Value::Null),
        "missing field `skip_width`",
    );
    assert!(Config::from_json("not json").is_err());
    assert!(
        Config::preset("huge")
            .unwrap_err()
            .to_string()
            .contains("unknown preset")
    );
}
