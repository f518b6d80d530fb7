//! The Slurm path end to end under a real Slurm. The test starts a single-node cluster of its
//! own (Debian's slurmctld and slurmd with munge, which `scripts/setup` installs) from a
//! generated `slurm.conf`, with its own munge key and socket, free ports and a scratch state
//! folder, so it touches no system service; `scripts/sweep/slurm-submit.sh` then queues the
//! real `slurm.sbatch` as a 4-task array and the merge job after it, exactly as docs/SWEEP.md
//! tells a user to, and the merged results must equal an unsharded run's byte for byte. The
//! daemons it started are stopped when the test ends, whether it passed or not.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

/// `name` on PATH or in /usr/sbin (Debian's daemons are there, off a user's PATH).
fn tool(name: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>());
    on_path
        .chain([PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("no `{name}`: run ./scripts/setup, which installs slurmctld, slurmd, slurm-client and munge from Debian"))
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A single-node Slurm cluster living in one scratch folder.
struct Cluster {
    dir: PathBuf,
    /// The user running the test: the daemons' and the jobs' user.
    user: String,
    daemons: Vec<(&'static str, Child)>,
}

impl Cluster {
    /// Starts munged, slurmctld and slurmd, and waits until the node takes jobs.
    fn start(dir: &Path) -> Cluster {
        let _ = std::fs::remove_dir_all(dir);
        for sub in ["state", "spool"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let user = Command::new("id").arg("-un").output().unwrap();
        let user = String::from_utf8(user.stdout).unwrap().trim().to_owned();
        let mut cluster = Cluster { dir: dir.to_owned(), user, daemons: vec![] };

        let key = dir.join("munge.key");
        let out = Command::new(tool("mungekey")).arg("--create").arg("--keyfile").arg(&key).output().unwrap();
        assert!(out.status.success(), "mungekey: {}", text(&out));
        let socket = dir.join("munge.socket");
        cluster.spawn(
            "munged",
            Command::new(tool("munged"))
                .args(["--foreground", "--force"])
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--pid-file={}", dir.join("munged.pid").display()))
                .arg(format!("--seed-file={}", dir.join("munged.seed").display()))
                .arg(format!("--log-file={}", dir.join("munged.log").display())),
        );
        cluster.wait("munged's socket", |_| socket.exists());

        // slurmctld serves only the host its name is configured for.
        let host = Command::new("hostname").arg("-s").output().unwrap();
        let host = String::from_utf8(host.stdout).unwrap().trim().to_owned();
        let user = &cluster.user;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let d = dir.display();
        let conf = format!(
            "ClusterName=systoletest\n\
             SlurmctldHost={host}(127.0.0.1)\n\
             SlurmctldPort={ctld}\nSlurmdPort={slurmd}\n\
             AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={socket}\n\
             SlurmUser={user}\nSlurmdUser={user}\n\
             StateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\n\
             SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
             ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\nJobAcctGatherType=jobacct_gather/none\n\
             AccountingStorageType=accounting_storage/none\nMpiDefault=none\nMailProg=/bin/true\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_CPU\n\
             ReturnToService=2\n\
             NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN\n\
             PartitionName=systole Nodes=ALL Default=YES MaxTime=01:00:00 State=UP\n",
            ctld = free_port(),
            slurmd = free_port(),
            socket = socket.display(),
        );
        std::fs::write(dir.join("slurm.conf"), conf).unwrap();
        cluster.spawn("slurmctld", Command::new(tool("slurmctld")).args(["-D", "-i"]));
        cluster.spawn("slurmd", Command::new(tool("slurmd")).arg("-D"));
        cluster.wait("the node to be idle", |cluster| {
            let out = cluster.command(tool("sinfo")).args(["--noheader", "--format=%T"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim() == "idle"
        });
        cluster
    }

    /// `program` talking to this cluster.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", self.dir.join("slurm.conf")).current_dir(&self.dir);
        cmd
    }

    fn spawn(&mut self, name: &'static str, cmd: &mut Command) {
        let log = std::fs::File::create(self.dir.join(format!("{name}.out"))).unwrap();
        let child = cmd
            .env("SLURM_CONF", self.dir.join("slurm.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push((name, child));
    }

    /// Polls `ready` for up to two minutes; fails with the logs if a daemon exits or time is up.
    fn wait(&mut self, what: &str, mut ready: impl FnMut(&Cluster) -> bool) {
        let start = Instant::now();
        while !ready(self) {
            let exited = self.daemons.iter_mut().find_map(|(name, child)| Some((*name, child.try_wait().ok()??)));
            if let Some((name, status)) = exited {
                panic!("{name} exited ({status}) while waiting for {what}:\n{}", self.logs());
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no {what} after two minutes:\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The queue (each job's state and reason), then every log and job output in the
    /// cluster's folder.
    fn logs(&self) -> String {
        let queue = self.command(tool("squeue")).args(["--all", "--format=%i %T %r"]).output().map(|o| text(&o)).unwrap_or_default();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let files: String = files
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "log" || e == "out"))
            .map(|p| format!("== {}\n{}", p.display(), std::fs::read_to_string(p).unwrap_or_default()))
            .collect();
        format!("== squeue\n{queue}{files}")
    }

    /// The state of every job (or array task) `id` names, once none is pending or running.
    fn finished_states(&mut self, id: &str) -> Vec<String> {
        let mut states = vec![];
        self.wait(&format!("job {id} to finish"), |cluster| {
            let out = cluster.command(tool("scontrol")).args(["show", "job", "--oneliner", id]).output().unwrap();
            states = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().find_map(|f| f.strip_prefix("JobState=")).map(str::to_owned))
                .collect();
            !states.is_empty() && states.iter().all(|s| !matches!(s.as_str(), "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING"))
        });
        states
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.command(tool("scancel")).args(["--user", &self.user]).output();
        // slurmctld stops slurmd too; munged, which both authenticate through, is killed last.
        let _ = self.command(tool("scontrol")).arg("shutdown").output();
        let deadline = Instant::now() + Duration::from_secs(15);
        for (name, child) in self.daemons.iter_mut().rev() {
            while *name != "munged" && Instant::now() < deadline && child.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `slurm-submit.sh 4 SPACE WORKLOAD sharded` as docs/SWEEP.md runs it: the shard array's
/// job id and the merge job's.
fn submit(cluster: &Cluster, space: &Path, workload: &Path) -> (String, String) {
    let out = cluster
        .command("bash")
        .arg(repo().join("scripts/sweep/slurm-submit.sh"))
        .arg("4")
        .args([space, workload])
        .arg("sharded")
        .env("SYSTOLE", env!("CARGO_BIN_EXE_systole"))
        .output()
        .unwrap();
    assert!(out.status.success(), "slurm-submit.sh: {}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let job_after = |words: &str| -> String {
        let rest = said.split(words).nth(1).unwrap_or_else(|| panic!("slurm-submit.sh said: {said}"));
        rest.split_whitespace().next().unwrap().to_owned()
    };
    (job_after("shard array "), job_after("merge job "))
}

#[test]
fn a_four_task_array_and_its_merge_job_under_slurm_equal_an_unsharded_sweep() {
    let dir = std::env::temp_dir().join(format!("systole-slurm-{}", std::process::id()));
    let mut cluster = Cluster::start(&dir);
    let space = repo().join("configs/spaces/edge.toml");
    let workload = repo().join("configs/workloads/mobilenetv2.toml");

    // Shard 2 cannot write its results (a folder stands where its file goes): its task
    // fails, the merge job is cancelled and no merged file appears.
    let blocked = dir.join("sharded/results-2-of-4.jsonl");
    std::fs::create_dir_all(&blocked).unwrap();
    let (array, merge) = submit(&cluster, &space, &workload);

    // Meanwhile, the same sweep in one run, outside Slurm.
    let expected = common::unsharded_sweep_by_id(&space, &workload, &dir.join("unsharded"));

    let mut tasks = cluster.finished_states(&array);
    tasks.sort();
    assert_eq!(tasks, ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"], "the array's tasks:\n{}", cluster.logs());
    assert_eq!(cluster.finished_states(&merge), ["CANCELLED"], "the merge job after a failed shard:\n{}", cluster.logs());
    assert!(!dir.join("sharded/results.jsonl").exists());

    // The same command again, once the cause is gone: shard 2 runs, the others find their
    // points done, and the merge job runs.
    std::fs::remove_dir(&blocked).unwrap();
    let (array, merge) = submit(&cluster, &space, &workload);
    assert_eq!(cluster.finished_states(&array), ["COMPLETED"; 4], "the array's tasks:\n{}", cluster.logs());
    assert_eq!(cluster.finished_states(&merge), ["COMPLETED"], "the merge job:\n{}", cluster.logs());
    let merged = std::fs::read(dir.join("sharded/results.jsonl")).unwrap();
    assert_eq!(expected.lines().count(), 72);
    assert!(merged == expected.as_bytes(), "merged results differ from the unsharded run's:\n{}", cluster.logs());

    // The walkthrough's last step: the report of the merged sweep.
    let report = Command::new(env!("CARGO_BIN_EXE_systole")).arg("report").arg(dir.join("sharded")).output().unwrap();
    assert!(report.status.success() && dir.join("sharded/report.md").is_file(), "systole report: {}", text(&report));
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
