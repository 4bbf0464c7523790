//! Helpers shared by the integration tests: fixture paths and a /proc scan for leftover processes.

#![allow(dead_code)]

use std::path::PathBuf;

/// The committed fixtures folder `datasets/humaneval`.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../datasets/humaneval")
}

/// A live process as seen in /proc.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub state: char,
    pub pgid: u32,
    pub session: u32,
    pub uid: u32,
    pub cmdline: String,
    /// The working directory, when readable.
    pub cwd: Option<PathBuf>,
}

/// Every process of this machine that /proc shows (those that vanish while reading are skipped).
pub fn processes() -> Vec<Proc> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc is readable").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let dir = entry.path();
        let (Ok(stat), Ok(status)) =
            (std::fs::read_to_string(dir.join("stat")), std::fs::read_to_string(dir.join("status")))
        else {
            continue;
        };
        // pid (comm) state ppid pgrp session ...
        let Some(after) = stat.rsplit_once(')').map(|(_, rest)| rest) else { continue };
        let fields: Vec<&str> = after.split_whitespace().collect();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse().ok())
            .unwrap_or(u32::MAX);
        let cmdline = std::fs::read(dir.join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        out.push(Proc {
            pid,
            state: fields[0].chars().next().unwrap_or('?'),
            pgid: fields[2].parse().unwrap_or(0),
            session: fields[3].parse().unwrap_or(0),
            uid,
            cmdline,
            cwd: std::fs::read_link(dir.join("cwd")).ok(),
        });
    }
    out
}
