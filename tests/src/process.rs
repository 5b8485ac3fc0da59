//! Crashing servers on purpose: [`Server::kill9`] ends a running `partnerd` with `SIGKILL` (no
//! graceful shutdown, no attempt in flight recorded, no transaction finished) and tells whether
//! the process was still alive when it was hit. A crashed server's database is untouched (it
//! belongs to the test's [`TestDatabase`](crate::TestDatabase), not to the [`Server`]), so a new
//! `Server::serve_with(same_url, …)` restarts the product on it; it binds a new port, which is
//! why clients follow [`Server::endpoint`] of the current process.

use std::process::ExitStatus;
use std::time::Instant;

use crate::Server;

/// What is left of a server after [`Server::kill9`].
#[derive(Debug)]
pub struct Killed {
    /// The base URL it served on.
    pub base_url: String,
    /// When the signal was sent.
    pub at: Instant,
    /// How the process ended.
    pub status: ExitStatus,
    /// Everything it wrote to stderr (its logs), up to the kill.
    pub logs: String,
}

impl Killed {
    /// The process died of the `SIGKILL`, i.e. it was still running when the signal was sent
    /// (not, say, already exited after a panic). Always `true` off Unix.
    pub fn died_of_sigkill(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            self.status.signal() == Some(9)
        }
        #[cfg(not(unix))]
        {
            true
        }
    }
}

impl Server {
    /// The process id of the running server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` now: `SIGKILL` on Unix (what `std::process::Child::kill` sends there;
    /// `TerminateProcess` elsewhere), then reaps the process and returns its status and logs.
    pub fn kill9(mut self) -> Killed {
        let at = Instant::now();
        let _ = self.child.kill();
        let status = self.child.wait().expect("reap the killed partnerd");
        Killed { base_url: self.base_url.clone(), at, status, logs: self.logs() }
        // `Drop` now finds the process reaped and only removes the log file.
    }
}
