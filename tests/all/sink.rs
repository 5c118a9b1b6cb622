//! The Python SMTP processes the end-to-end tests talk to: the aiosmtpd
//! sinks of `remote_smtp` (and the modules that use them), the content
//! filter of `content_filter` and the counting next hop of
//! `connection_cache`. Each is started under a Python that has
//! aiosmtpd, is ready once it prints its port, is killed when dropped, and
//! leaves what it received as `msgN.txt` files in its directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::WAIT;

/// A Python 3 that has aiosmtpd: `python3` on the PATH, else Debian's
/// (`python3-aiosmtpd` installs for /usr/bin/python3, which a pyenv
/// `python3` does not see).
pub fn python_with_aiosmtpd() -> &'static str {
    for python in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return python;
        }
    }
    panic!("aiosmtpd is not installed: apt-get install python3-aiosmtpd (or pip install aiosmtpd)");
}

/// A Python SMTP script's process; killed when dropped.
pub struct PythonSmtp {
    child: Child,
}

impl PythonSmtp {
    /// Runs `script` with `args` and waits (bounded) for the first line
    /// it prints, its port, which it returns; `what` names it if it never
    /// comes.
    pub fn start<S: AsRef<OsStr>>(
        what: &str,
        script: &str,
        args: impl IntoIterator<Item = S>,
    ) -> (PythonSmtp, String) {
        PythonSmtp::start_under(python_with_aiosmtpd(), what, script, args)
    }

    /// As [`PythonSmtp::start`], for a script that needs only Python's
    /// standard library (asyncio), so no aiosmtpd either.
    pub fn start_plain<S: AsRef<OsStr>>(
        what: &str,
        script: &str,
        args: impl IntoIterator<Item = S>,
    ) -> (PythonSmtp, String) {
        PythonSmtp::start_under("python3", what, script, args)
    }

    fn start_under<S: AsRef<OsStr>>(
        python: &str,
        what: &str,
        script: &str,
        args: impl IntoIterator<Item = S>,
    ) -> (PythonSmtp, String) {
        let mut child = Command::new(python)
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // Killed on the way out of a failed start too.
        let process = PythonSmtp { child };
        let line = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("{what} did not start"));
        (process, line)
    }
}

impl Drop for PythonSmtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a sink received so far: the text of each `*.txt` file in `dir`,
/// in name order. The scripts write a message under another name and
/// rename it, so a file listed here is whole.
pub fn received(dir: &Path) -> Vec<String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}
