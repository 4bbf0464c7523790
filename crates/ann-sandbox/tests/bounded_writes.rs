//! A program that tries to fill the disk, in the real sandbox with bubblewrap: each writable area
//! (working directory, `/tmp`, `/dev/shm`) is a tmpfs of `scratch_bytes` that answers `ENOSPC`, the
//! rest of the file system (`/dev` included) is read-only, no process the program starts can raise
//! the file-size limit, and nothing is left in the scratch folder afterwards.

use ann_sandbox::{BubblewrapMode, Sandbox, SandboxConfig};

const SCRATCH: u64 = 8 << 20;

const FILLER: &str = r#"
import os, resource, subprocess, sys
SCRATCH = 8 << 20
for area in ['.', '/tmp', '/dev/shm']:
    written, n = 0, 0
    try:
        # Bounded here too, so that a sandbox that lost its limit fails this test without harm.
        while written < 4 * SCRATCH:
            with open(os.path.join(area, 'fill-%d' % n), 'wb') as f:
                f.write(b'z' * (1 << 20))
            written += 1 << 20
            n += 1
        print('area', area, 'not stopped after', written)
    except OSError as e:
        print('area', area, 'stopped after', written, 'errno', e.errno)
for path in ['/dev/x', '/var/tmp/x', '/etc/x']:
    try:
        open(path, 'w').write('x')
        print('wrote', path)
    except OSError as e:
        print('refused', path)
child = '''
import resource
try:
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print('child raised the limit')
except (ValueError, OSError):
    print('child could not raise the limit')
try:
    open('/tmp/big', 'wb').write(b'y' * (3 << 20))
    print('child wrote 3 MiB')
except OSError as e:
    print('child refused errno', e.errno)
'''
for area in ['/tmp', '/dev/shm']:
    for name in os.listdir(area):
        if name.startswith('fill-'):
            os.remove(os.path.join(area, name))
print(subprocess.run([sys.executable, '-c', child], capture_output=True, text=True).stdout.strip())
"#;

#[tokio::test]
async fn every_writable_area_is_a_bounded_tmpfs_and_nothing_survives() {
    use std::os::unix::fs::PermissionsExt as _;
    let scratch = tempfile::Builder::new().prefix("ann-bounded-writes-").tempdir().unwrap();
    std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = SandboxConfig {
        bubblewrap: BubblewrapMode::Required,
        scratch_bytes: SCRATCH,
        max_file_bytes: 2 << 20,
        scratch_dir: scratch.path().to_path_buf(),
        timeout: std::time::Duration::from_secs(20),
        ..SandboxConfig::default()
    };
    let sandbox = Sandbox::new(config).await.unwrap_or_else(|e| panic!("{e}"));
    let out = sandbox.run(FILLER).await.unwrap();
    assert!(out.success(), "{out:?}");
    let stopped: Vec<(&str, u64, i32)> = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("area "))
        .inspect(|l| assert!(!l.contains("not stopped"), "{l}"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w[0], w[3].parse().unwrap(), w[5].parse().unwrap())
        })
        .collect();
    assert_eq!(stopped.len(), 3, "{}", out.stdout);
    for (area, written, errno) in stopped {
        assert_eq!(errno, libc::ENOSPC, "{area}: {}", out.stdout);
        assert!((SCRATCH / 2..=SCRATCH).contains(&written), "{area} took {written} bytes: {}", out.stdout);
    }
    for path in ["/dev/x", "/var/tmp/x", "/etc/x"] {
        assert!(out.stdout.contains(&format!("refused {path}")), "{}", out.stdout);
    }
    assert!(out.stdout.contains("child could not raise the limit"), "{}", out.stdout);
    assert!(out.stdout.contains(&format!("child refused errno {}", libc::EFBIG)), "{}", out.stdout);
    let left: Vec<_> = std::fs::read_dir(scratch.path()).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "left in the scratch folder: {left:?}");
}
