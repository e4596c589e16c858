//! What machine and build a run happened on, for every report.

use serde::Serialize;
use sysinfo::System;

/// The machine and build of a run.
#[derive(Debug, Clone, Serialize)]
pub struct MachineInfo {
    pub cpu: String,
    pub physical_cores: Option<usize>,
    pub logical_cores: usize,
    pub memory_gib: f64,
    pub os: String,
    pub kernel: String,
    pub crate_version: &'static str,
    pub git_commit: String,
    pub rustc: String,
    pub profile: &'static str,
}

impl MachineInfo {
    /// Reads it now.
    pub fn collect() -> MachineInfo {
        let mut sys = System::new();
        sys.refresh_cpu_all();
        sys.refresh_memory();
        let cpu = sys
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_owned())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        MachineInfo {
            cpu,
            physical_cores: System::physical_core_count(),
            logical_cores: sys.cpus().len(),
            memory_gib: sys.total_memory() as f64 / (1024.0 * 1024.0 * 1024.0),
            os: System::long_os_version().unwrap_or_else(|| "unknown".to_owned()),
            kernel: System::kernel_version().unwrap_or_else(|| "unknown".to_owned()),
            crate_version: env!("CARGO_PKG_VERSION"),
            git_commit: git_commit(),
            rustc: command_line_output("rustc", &["--version"])
                .unwrap_or_else(|| "unknown".to_owned()),
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
        }
    }

    /// One line for the report header.
    pub fn summary(&self) -> String {
        format!(
            "{} ({} logical cores{}), {:.1} GiB RAM, {}, kernel {}",
            self.cpu,
            self.logical_cores,
            self.physical_cores
                .map(|p| format!(", {p} physical"))
                .unwrap_or_default(),
            self.memory_gib,
            self.os,
            self.kernel
        )
    }
}

fn git_commit() -> String {
    let Some(commit) = command_line_output("git", &["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_owned();
    };
    let dirty = command_line_output("git", &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{commit} (with uncommitted changes)")
    } else {
        commit
    }
}

fn command_line_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
