//! The cluster scripts' shard arithmetic (`scripts/sweep/`), run with a stand-in `systole`
//! that prints its arguments: every task of a Slurm array, whatever its range and step, and
//! every pod of the Kubernetes Indexed Job, runs a distinct shard of the right count, and
//! what cannot be a shard is refused before anything runs; and the local array with the
//! real binary. (Under a real Slurm: `slurm_cluster.rs`. The Indexed Job has not run on a
//! live Kubernetes.)

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A new directory holding an executable `systole` that prints its arguments (one per call:
/// tests run at once, and a file being written cannot be executed).
fn stand_in() -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("systole-stand-in-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("systole");
    std::fs::write(&bin, "#!/bin/sh\necho \"$@\"\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// `slurm.sbatch S W O` as one array task with `env`: success, stdout, stderr.
fn task(env: &[(&str, String)]) -> (bool, String, String) {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/sweep/slurm.sbatch")).args(["S.toml", "W.toml", "OUT"]);
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "SLURM_ARRAY_TASK_STEP",
        "SYSTOLE",
        "SYSTOLE_SHARDS",
        "SLURM_CPUS_PER_TASK",
    ] {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The shard every task of the array `ids` (Slurm's variables for it) runs.
fn shards(ids: &[u64], step: u64) -> Vec<String> {
    let bin = stand_in().join("systole").display().to_string();
    let (min, max) = (ids[0], ids[ids.len() - 1]);
    ids.iter()
        .map(|id| {
            let env = [
                ("SLURM_ARRAY_TASK_ID", id.to_string()),
                ("SLURM_ARRAY_TASK_COUNT", ids.len().to_string()),
                ("SLURM_ARRAY_TASK_MIN", min.to_string()),
                ("SLURM_ARRAY_TASK_MAX", max.to_string()),
                ("SLURM_ARRAY_TASK_STEP", step.to_string()),
                ("SYSTOLE", bin.clone()),
            ];
            let (ok, stdout, stderr) = task(&env);
            assert!(ok, "task {id}: {stderr}");
            stdout.split_whitespace().skip_while(|a| *a != "--shard").nth(1).unwrap().to_string()
        })
        .collect()
}

#[test]
fn every_slurm_array_runs_each_shard_once() {
    let four = ["0/4", "1/4", "2/4", "3/4"];
    assert_eq!(shards(&[0, 1, 2, 3], 1), four, "--array=0-3");
    assert_eq!(shards(&[1, 2, 3, 4], 1), four, "--array=1-4");
    assert_eq!(shards(&[0, 2, 4, 6], 2), four, "--array=0-6:2");
    assert_eq!(shards(&[5], 1), ["0/1"], "--array=5");
}

#[test]
fn what_is_no_shard_is_refused_before_anything_runs() {
    let bin = stand_in().join("systole").display().to_string();
    let var = |k: &'static str, v: &str| (k, v.to_string());
    // A list (--array=1,3): two tasks that are no evenly spaced range of two.
    let list = [
        var("SLURM_ARRAY_TASK_ID", "3"),
        var("SLURM_ARRAY_TASK_COUNT", "2"),
        var("SLURM_ARRAY_TASK_MIN", "1"),
        var("SLURM_ARRAY_TASK_MAX", "3"),
        var("SLURM_ARRAY_TASK_STEP", "1"),
        var("SYSTOLE", &bin),
    ];
    let (ok, stdout, stderr) = task(&list);
    assert!(!ok && stdout.is_empty() && stderr.contains("evenly spaced"), "{stderr}");
    // Not an array task.
    let (ok, _, stderr) = task(&[var("SYSTOLE", &bin)]);
    assert!(!ok && stderr.contains("sbatch --array=0-N"), "{stderr}");
    // No binary.
    let mut missing = list.clone();
    missing[5] = var("SYSTOLE", "/nonexistent/systole");
    missing[0] = var("SLURM_ARRAY_TASK_ID", "1");
    missing[1] = var("SLURM_ARRAY_TASK_COUNT", "3");
    let (ok, _, stderr) = task(&missing);
    assert!(!ok && stderr.contains("set SYSTOLE="), "{stderr}");
    // Re-running one shard of an earlier array of 8: its id is the shard.
    let rerun = |id: &str| {
        task(&[var("SLURM_ARRAY_TASK_ID", id), var("SYSTOLE_SHARDS", "8"), var("SYSTOLE", &bin), var("SLURM_CPUS_PER_TASK", "4")])
    };
    let (ok, stdout, _) = rerun("2");
    assert!(ok && stdout.contains("--shard 2/8") && stdout.contains("--jobs 4"), "{stdout}");
    let (ok, _, stderr) = rerun("8");
    assert!(!ok && stderr.contains("no shard of 8"), "{stderr}");
}

#[test]
fn the_indexed_job_gives_each_pod_its_shard_of_its_completions() {
    let yaml = std::fs::read_to_string(repo().join("scripts/sweep/k8s-indexed-job.yaml")).unwrap();
    let field = |key: &str| -> u64 {
        let line = yaml.lines().find(|l| l.trim_start().starts_with(key)).unwrap_or_else(|| panic!("no `{key}`"));
        line.split(':').nth(1).unwrap().trim().parse().unwrap()
    };
    let completions = field("completions:");
    assert!(field("parallelism:") <= completions);
    // The container's command line, as `sh -c` runs it in pod k.
    let script =
        yaml.lines().skip_while(|l| !l.trim_start().starts_with("args:")).nth(1).unwrap().trim().trim_start_matches("- ").to_string();
    let path = format!("{}:{}", stand_in().display(), std::env::var("PATH").unwrap_or_default());
    for k in 0..completions {
        let out = Command::new("sh").args(["-c", &script]).env("JOB_COMPLETION_INDEX", k.to_string()).env("PATH", &path).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(&format!("--shard {k}/{completions}")), "pod {k}: {stdout}");
    }
}

#[test]
fn the_submit_script_queues_the_shards_and_a_merge_after_them() {
    // A stand-in `sbatch` that logs each call's arguments and answers job ids 101, 102.
    let dir = stand_in();
    let log = dir.join("sbatch.log");
    let sbatch = dir.join("sbatch");
    std::fs::write(
        &sbatch,
        "#!/bin/sh\nn=$(cat \"$SBATCH_LOG.count\" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > \"$SBATCH_LOG.count\"\nfor a in \"$@\"; do printf '%s\\n' \"$a\" >> \"$SBATCH_LOG\"; done\necho -- >> \"$SBATCH_LOG\"\necho \"10$n;cluster\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sbatch, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new("bash")
        .arg(repo().join("scripts/sweep/slurm-submit.sh"))
        .args(["4", "S.toml", "W.toml", "OUT", "--partition=p"])
        .env("PATH", &path)
        .env("SBATCH_LOG", &log)
        .env_remove("SYSTOLE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("shard array 101 (4 tasks) and merge job 102"), "{stdout}");
    let text = std::fs::read_to_string(&log).unwrap();
    let calls: Vec<Vec<&str>> = text.split("--\n").filter(|c| !c.is_empty()).map(|c| c.lines().collect()).collect();
    let [array, merge] = &calls[..] else { panic!("{} sbatch calls: {text}", calls.len()) };
    assert!(array.contains(&"--array=0-3") && array.contains(&"--partition=p"), "{array:?}");
    assert!(array.iter().any(|a| a.starts_with("--export=ALL,SYSTOLE=") && a.ends_with("/systole")), "{array:?}");
    assert!(
        array.ends_with(&[repo().join("scripts/sweep/slurm.sbatch").canonicalize().unwrap().to_str().unwrap(), "S.toml", "W.toml", "OUT"]),
        "{array:?}"
    );
    assert!(
        merge.contains(&"--dependency=afterok:101") && merge.contains(&"--kill-on-invalid-dep=yes") && merge.contains(&"--partition=p"),
        "{merge:?}"
    );
    let wrap = merge.iter().find_map(|a| a.strip_prefix("--wrap=")).expect("a --wrap command");
    let shards = (0..4).map(|k| format!("OUT/results-{k}-of-4.jsonl")).collect::<Vec<_>>().join(" ");
    assert!(wrap.contains(&format!("sweep merge --space S.toml --out OUT {shards}")), "{wrap}");
}

#[test]
fn the_local_array_merges_the_whole_sweep() {
    let dir = std::env::temp_dir().join(format!("systole-local-array-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (space, workload) = (repo().join("configs/spaces/edge.toml"), repo().join("configs/workloads/board.toml"));
    let out = Command::new("bash")
        .arg(repo().join("scripts/sweep/local-array.sh"))
        .arg("3")
        .args([&space, &workload])
        .arg(dir.join("sharded"))
        .env("SYSTOLE", env!("CARGO_BIN_EXE_systole"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = common::unsharded_sweep_by_id(&space, &workload, &dir.join("unsharded"));
    assert_eq!(expected.lines().count(), 72);
    assert_eq!(std::fs::read_to_string(dir.join("sharded/results.jsonl")).unwrap(), expected);
    let _ = std::fs::remove_dir_all(&dir);
}
