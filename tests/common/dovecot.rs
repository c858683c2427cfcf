//! Dovecot (Debian's `dovecot-imapd` and `dovecot-pop3d`) as a real IMAP and POP3 server
//! for tests: its own configuration in a temporary directory, listening on 127.0.0.1 on
//! free ports, clear text (`ssl = no`), users from a passwd-file, mail in maildirs under
//! the directory. It runs as the current user; as root, its login processes run as
//! `dovenull` and the mail as `dovecot` (Dovecot refuses root for both). Stopped (and
//! startable again, same ports and mail) at will; stopped when dropped.
//!
//! ```ignore
//! let mut dovecot = Dovecot::new(&[("desk@corp.example", "secret")], &["Sent"]);
//! dovecot.start();
//! let sent = dovecot.messages("desk@corp.example", "Sent");
//! ```

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = "/usr/sbin/dovecot";

/// A configured Dovecot, running or not.
pub struct Dovecot {
    dir: tempfile::TempDir,
    pub imap_port: u16,
    pub pop3_port: u16,
    child: Option<Child>,
}

impl Dovecot {
    /// Writes the configuration for `users` (login, password) whose mailboxes have the
    /// `folders` (created at first login; `Sent` gets the `\Sent` special use, nested ones
    /// use `/`). Installs Dovecot first when missing and root. Not started yet.
    pub fn new(users: &[(&str, &str)], folders: &[&str]) -> Dovecot {
        super::apt::ensure_installed(
            "the IMAP and POP3 tests",
            &[
                (BINARY, "dovecot-imapd"),
                ("/usr/lib/dovecot/imap", "dovecot-imapd"),
                ("/usr/lib/dovecot/pop3", "dovecot-pop3d"),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let [imap_port, pop3_port] = super::free_ports::<2>();
        let dovecot = Dovecot {
            dir,
            imap_port,
            pop3_port,
            child: None,
        };
        dovecot.configure(users, folders);
        dovecot
    }

    /// The IMAP listener.
    pub fn imap_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.imap_port))
    }

    /// The POP3 listener.
    pub fn pop3_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.pop3_port))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn configure(&self, users: &[(&str, &str)], folders: &[&str]) {
        let root = self.dir.path();
        let (login_user, mail_user) = users_to_run_as();
        let (uid, gid) = ids_of(&mail_user);
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        // The mail processes (another user when root) must reach their maildirs.
        set_mode(root, 0o755);
        chown(&root.join("mail"), uid, gid);
        let passwd: String = users
            .iter()
            .map(|(user, password)| format!("{user}:{{PLAIN}}{password}::::::\n"))
            .collect();
        std::fs::write(root.join("passwd"), passwd).unwrap();
        let mailboxes: String = folders
            .iter()
            .map(|folder| {
                let special = match *folder {
                    "Sent" | "Sent Items" | "Sent Mail" => "special_use = \\Sent\n    ",
                    _ => "",
                };
                format!("  mailbox \"{folder}\" {{\n    {special}auto = create\n  }}\n")
            })
            .collect();
        let r = root.display();
        let config = format!(
            "protocols = imap pop3\n\
             listen = 127.0.0.1\n\
             base_dir = {r}/run\n\
             state_dir = {r}/state\n\
             instance_name = postern-test-{imap}\n\
             log_path = {r}/dovecot.log\n\
             ssl = no\n\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             mail_location = maildir:{r}/mail/%u\n\
             default_login_user = {login_user}\n\
             default_internal_user = {mail_user}\n\
             default_internal_group = {mail_group}\n\
             first_valid_uid = 1\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%u {r}/passwd\n  \
               default_fields = uid={uid} gid={gid} home={r}/mail/%u\n}}\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  \
               inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
             service pop3-login {{\n  inet_listener pop3 {{\n    port = {pop3}\n  }}\n  \
               inet_listener pop3s {{\n    port = 0\n  }}\n}}\n\
             service stats {{\n  unix_listener stats-reader {{\n    mode = 0666\n  }}\n  \
               unix_listener stats-writer {{\n    mode = 0666\n  }}\n}}\n\
             namespace inbox {{\n  inbox = yes\n  separator = /\n{mailboxes}}}\n",
            imap = self.imap_port,
            pop3 = self.pop3_port,
            mail_group = group_of(&mail_user),
        );
        std::fs::write(root.join("dovecot.conf"), config).unwrap();
    }

    /// Starts Dovecot and waits until its IMAP port accepts connections.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "Dovecot is already running");
        let _ = std::fs::remove_file(self.path("run/master.pid"));
        let child = Command::new(BINARY)
            .arg("-F")
            .arg("-c")
            .arg(self.path("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(self.imap_addr()).is_err() {
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                self.child = None;
                panic!("Dovecot did not start ({exited:?}):\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops Dovecot (SIGTERM, then SIGKILL after 5 s) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id() as libc::pid_t;
        // SAFETY: signals our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True while started.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Dovecot's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("dovecot.log")).unwrap_or_default()
    }

    /// The maildir of `user`'s `folder` (`INBOX` is the root; `a/b` is `.a.b`).
    pub fn maildir(&self, user: &str, folder: &str) -> PathBuf {
        let mailbox = self.dir.path().join("mail").join(user);
        match folder.eq_ignore_ascii_case("INBOX") {
            true => mailbox,
            false => mailbox.join(format!(".{}", folder.replace('/', "."))),
        }
    }

    /// The messages in `user`'s `folder`, read from its maildir (`new/` and `cur/`),
    /// ordered by file name (delivery order).
    pub fn messages(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        let dir = self.maildir(user, folder);
        let mut files: Vec<PathBuf> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(dir.join(sub)).ok())
            .flat_map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path()))
            .collect();
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// Puts `message` into `user`'s `folder` directly (as a local delivery would), for
    /// tests that fetch mail; the folder must exist (log in once first).
    pub fn deliver(&self, user: &str, folder: &str, message: &[u8]) {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let dir = self.maildir(user, folder);
        let name = format!(
            "{}.P{}Q{}.postern-test",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("tmp").join(&name), message).unwrap();
        std::fs::rename(dir.join("tmp").join(&name), dir.join("new").join(&name)).unwrap();
        let (uid, gid) = ids_of(&users_to_run_as().1);
        let mail = self.dir.path().join("mail");
        chown(&mail, uid, gid);
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Who runs the login processes and the mail: the current user, or when root
/// `dovenull` and `dovecot` (both created by the Debian package).
fn users_to_run_as() -> (String, String) {
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    match unsafe { libc::geteuid() } {
        0 => ("dovenull".into(), "dovecot".into()),
        _ => {
            let me = output("id", &["-un"]);
            (me.clone(), me)
        }
    }
}

fn ids_of(user: &str) -> (u32, u32) {
    let uid = output("id", &["-u", user]).parse().unwrap();
    let gid = output("id", &["-g", user]).parse().unwrap();
    (uid, gid)
}

fn group_of(user: &str) -> String {
    output("id", &["-gn", user])
}

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Gives `path` and everything under it to `uid:gid` (a no-op when they are ours).
fn chown(path: &Path, uid: u32, gid: u32) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown {}", path.display());
}
