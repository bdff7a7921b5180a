//! The `ferrolite` command line, run as a user would: the `run` .npy
//! contract, `bench --json` keys, `inspect --json`, and clear errors.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The built CLI; under `FERROLITE_CLI_RUNNER` (a command and its
/// arguments, e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu` when the tests
/// run a cross-compiled build) through that runner.
fn exe() -> Command {
    let bin = env!("CARGO_BIN_EXE_ferrolite");
    let runner = std::env::var("FERROLITE_CLI_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut cmd = Command::new(program);
            cmd.args(words).arg(bin);
            cmd
        }
        None => Command::new(bin),
    }
}

fn fixture(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.join("testdata/models").join(name)
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ferrolite-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Header-stripped payload and the header text of a .npy file.
fn npy(path: &Path) -> (String, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (major, hlen_at) = (bytes[6], 8);
    let (hlen, start) = if major == 1 {
        (u16::from_le_bytes([bytes[hlen_at], bytes[hlen_at + 1]]) as usize, 10)
    } else {
        (u32::from_le_bytes(bytes[hlen_at..hlen_at + 4].try_into().unwrap()) as usize, 12)
    };
    let header = String::from_utf8_lossy(&bytes[start..start + hlen]).to_string();
    (header, bytes[start + hlen..].to_vec())
}

#[test]
fn run_writes_each_output_in_its_own_dtype_and_matches_litert() {
    let name = "mobilenet_v1_0.25_128.int8";
    let out = tmpdir("run");
    let status = exe()
        .arg("run")
        .arg(fixture(&format!("{name}.tflite")))
        .arg("--input")
        .arg(fixture(&format!("{name}.in0.npy")))
        .arg("--output-dir")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let (header, data) = npy(&out.join("0.npy"));
    let (ref_header, ref_data) = npy(&fixture(&format!("{name}.ref0.npy")));
    // numpy writes "(1, 1000)", npyz "(1, 1000, )": the same tuple.
    let compact = |h: &str| h.replace(' ', "").replace(",)", ")");
    assert!(compact(&header).contains("'descr':'|i1'") && compact(&header).contains("(1,1000)"), "{header}");
    assert!(compact(&ref_header).contains("(1,1000)"), "{ref_header}");
    assert_eq!(data, ref_data, "int8 output must equal LiteRT's reference bytes");
    assert!(!out.join("1.npy").exists());
}

#[test]
fn bench_json_has_the_documented_keys() {
    let out = exe()
        .args(["bench", "--runs", "3", "--warmup", "1", "--json"])
        .arg(fixture("sine_float.tflite"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in
        ["load_ms", "allocate_ms", "first_invoke_ms", "median_ms", "p90_ms", "min_ms", "arena_bytes", "peak_rss_bytes"]
    {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert!(v["min_ms"].as_f64().unwrap() <= v["median_ms"].as_f64().unwrap());
    assert!(v["median_ms"].as_f64().unwrap() <= v["p90_ms"].as_f64().unwrap());
}

#[test]
fn bench_profile_reports_gflops_from_the_layer_shapes() {
    let out = exe()
        .args(["bench", "--runs", "3", "--warmup", "0", "--json", "--profile"])
        .arg(fixture("sine_float.tflite"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The sine model is FULLY_CONNECTED 1 -> 16 -> 16 -> 1: 2 * (16 * 1),
    // 2 * (16 * 16) and 2 * (1 * 16) operations per run. Recover them from
    // rate and time.
    let mut flops: Vec<f64> = v["profile"]["per_node"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["op"] == "FULLY_CONNECTED")
        .map(|n| n["gflops"].as_f64().unwrap() * n["ms_per_run"].as_f64().unwrap() * 1e6)
        .collect();
    flops.sort_by(f64::total_cmp);
    assert_eq!(flops.len(), 3, "{v}");
    for (got, want) in flops.iter().zip([32.0, 32.0, 512.0]) {
        assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
    }
}

#[test]
fn inspect_json_describes_the_graph() {
    let out = exe().args(["inspect", "--json"]).arg(fixture("mobilenet_v1_0.25_128.int8.tflite")).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sg = &v["subgraphs"][0];
    let input = sg["inputs"][0].as_u64().unwrap() as usize;
    let t = &sg["tensors"][input];
    assert_eq!(t["dtype"], "int8");
    assert_eq!(t["shape"], serde_json::json!([1, 128, 128, 3]));
    assert!(t["quantization"]["scales"][0].as_f64().unwrap() > 0.0);
    assert!(sg["operators"].as_array().unwrap().iter().any(|o| o["op"] == "CONV_2D"));
    assert!(v["arena_bytes"].as_u64().unwrap() > 0);
}

#[test]
fn a_broken_model_fails_with_a_message_not_a_panic() {
    let dir = tmpdir("broken");
    let mut bytes = std::fs::read(fixture("sine_float.tflite")).unwrap();
    bytes.truncate(bytes.len() / 2);
    let path = dir.join("truncated.tflite");
    std::fs::write(&path, &bytes).unwrap();
    let out = exe().arg("inspect").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("error: malformed model file") || err.starts_with("error: invalid model"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = exe().arg("run").arg(dir.join("missing.tflite")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn run_rejects_an_input_of_the_wrong_type() {
    let out = exe()
        .arg("run")
        .arg(fixture("mobilenet_v1_0.25_128.int8.tflite"))
        .arg("--input")
        .arg(fixture("mobilenet_v1_0.25_128.f32.in0.npy"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("int8") && err.contains("float32"), "{err}");
}
