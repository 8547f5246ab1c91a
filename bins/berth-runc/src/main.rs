//! berth-runc: an OCI runtime with runc's command-line contract, so that containerd, Docker and
//! anything else that drives runc can drive Berth's runtime.

mod foreground;
mod log;
mod specgen;
mod update;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use berth_runtime::container::{self, CreateOpts};
use berth_runtime::exec::ExecOpts;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth-runc", version, about = "Berth's OCI runtime (runc-compatible command line)")]
struct Cli {
    /// Directory for container state (tmpfs recommended).
    #[arg(long, global = true, default_value = berth_runtime::state::DEFAULT_ROOT)]
    root: PathBuf,
    /// Write errors and warnings to this file instead of only stderr.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Treat cgroupsPath as systemd's slice:prefix:name.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility (rootless mode is detected).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    rootless: Option<String>,
    /// Accepted for runc compatibility; checkpointing is not supported.
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket that receives the pty master when process.terminal is set.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Use MS_MOVE + chroot instead of pivot_root (for a rootfs on ramfs).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Keep the caller's session keyring instead of a new one.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, ...) to the container process.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: u32,
    container_id: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container (set up, waiting for start).
    Create(CreateArgs),
    /// Start the user process of a created container.
    Start { container_id: String },
    /// Print the state of a container as JSON.
    State { container_id: String },
    /// Send a signal (default SIGTERM) to the container's init (or all processes with --all).
    Kill {
        #[arg(short, long)]
        all: bool,
        container_id: String,
        signal: Option<String>,
    },
    /// Delete a stopped container (or any, with --force).
    Delete {
        #[arg(short, long)]
        force: bool,
        container_id: String,
    },
    /// Create and start a container; wait for it unless --detach.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
    },
    /// Run a new process in a running container.
    Exec(Box<update::ExecArgs>),
    /// List the processes of a container.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        container_id: String,
        /// Options passed to ps(1) for the table format.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze all processes of a container.
    Pause { container_id: String },
    /// Thaw a paused container.
    Resume { container_id: String },
    /// Change resource limits of a running container.
    Update(Box<update::UpdateArgs>),
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// Print the runtime's features as JSON.
    Features,
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
}

fn create_opts(c: &CreateArgs, cli: &Cli) -> CreateOpts {
    CreateOpts {
        id: c.container_id.clone(),
        bundle: c.bundle.clone(),
        root: cli.root.clone(),
        pid_file: c.pid_file.clone(),
        console_socket: c.console_socket.clone(),
        console_fd: None,
        no_pivot: c.no_pivot,
        no_new_keyring: c.no_new_keyring,
        preserve_fds: c.preserve_fds,
        systemd_cgroup: cli.systemd_cgroup,
    }
}

pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let r = serde_json::to_writer_pretty(&mut out, v).map_err(std::io::Error::from).and_then(|()| writeln!(out));
    match r {
        // A reader that stops early (`| head`) is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn run(cli: &Cli) -> Result<i32> {
    let root = &cli.root;
    match &cli.cmd {
        Cmd::Create(c) => {
            container::create(&create_opts(c, cli))?;
        }
        Cmd::Start { container_id } => container::start(root, container_id)?,
        Cmd::State { container_id } => print_json(&container::state(root, container_id)?)?,
        Cmd::Kill { all, container_id, signal } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            container::kill(root, container_id, sig, *all)?;
        }
        Cmd::Delete { force, container_id } => match container::delete(root, container_id, *force) {
            // Deleting what is already gone succeeds with --force, as with runc.
            Err(berth_runtime::Error::NotFound(_)) if *force => {}
            r => r?,
        },
        Cmd::Run { create, detach, keep } => return foreground::run(cli_root(cli), create_opts(create, cli), *detach, *keep),
        Cmd::Exec(e) => {
            let process = e.process_with_root(root)?;
            let opts = ExecOpts {
                root: root.clone(),
                id: e.container_id.clone(),
                process,
                pid_file: e.pid_file.clone(),
                console_socket: e.console_socket.clone(),
                console_fd: None,
                preserve_fds: e.preserve_fds,
            };
            return foreground::exec(opts, e.detach);
        }
        Cmd::Ps { format, container_id, ps_args } => {
            let pids = container::pids(root, container_id)?;
            if format == "json" {
                print_json(&pids)?;
            } else {
                foreground::ps_table(&pids, ps_args)?;
            }
        }
        Cmd::Pause { container_id } => container::pause(root, container_id)?,
        Cmd::Resume { container_id } => container::resume(root, container_id)?,
        Cmd::Update(u) => container::update(root, &u.container_id, &u.resources()?)?,
        Cmd::Spec { bundle } => {
            let path = bundle.join("config.json");
            if path.exists() {
                bail!("File {} exists. Remove it first", path.display());
            }
            let spec = specgen::default_spec(cli.rootless.as_deref() == Some("true"));
            std::fs::write(&path, serde_json::to_vec_pretty(&spec)?).with_context(|| format!("write {}", path.display()))?;
        }
        Cmd::Features => print_json(&specgen::features())?,
        Cmd::List { format, quiet } => {
            let all = container::list(root)?;
            if *quiet {
                for s in &all {
                    println!("{}", s.id);
                }
            } else if format == "json" {
                print_json(&all)?;
            } else {
                println!("{:<20} {:<8} {:<10} {:<40} {:<32} OWNER", "ID", "PID", "STATUS", "BUNDLE", "CREATED");
                for s in &all {
                    println!("{:<20} {:<8} {:<10} {:<40} {:<32} {}", s.id, s.pid, s.status, s.bundle.display(), s.created, s.owner);
                }
            }
        }
    }
    Ok(0)
}

fn cli_root(cli: &Cli) -> PathBuf {
    cli.root.clone()
}

fn main() {
    let cli = Cli::parse();
    let logger = log::Logger::new(cli.log.clone(), &cli.log_format);
    // Commands that put a process of ours into a container first move off the on-disk binary
    // (see berth_runtime::selfexe). The env switch exists for benchmarking the cost only.
    if matches!(cli.cmd, Cmd::Create(_) | Cmd::Run { .. } | Cmd::Exec(_))
        && std::env::var_os("BERTH_RUNC_UNSAFE_NO_EXE_PROTECTION").is_none()
    {
        if let Err(e) = berth_runtime::selfexe::reexec_protected() {
            logger.error(&e.to_string());
            std::process::exit(1);
        }
    }
    let code = match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            logger.error(&format!("{e:#}"));
            1
        }
    };
    std::process::exit(code);
}
