//! berth: the Docker command line for Berth. It speaks the Docker Engine API to berthd through
//! berth-api's client and never touches the daemon's state directly.

mod cli;
mod cmd;
mod config;
mod format;
mod hints;
mod term;

use std::io::Write;

use anyhow::Result;
use berth_api::client::{self, Client};
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use cli::network::NetworkCmd;
use cli::volume::VolumeCmd;
use cli::{Cli, Cmd, ContainerCmd, ImageCmd, SystemCmd};

/// An exit status whose message has already been printed.
#[derive(Debug)]
pub struct Exit(pub i32);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit status {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// An OS error as Go words it ("no such file or directory"), without Rust's " (os error 2)".
pub fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut c = s.chars();
    c.next().map(|f| f.to_lowercase().chain(c).collect()).unwrap_or_default()
}

pub struct Ctx {
    pub client: Client,
}

fn version_line() -> String {
    format!("Berth version {}, build {}", env!("CARGO_PKG_VERSION"), option_env!("BERTH_GIT_COMMIT").unwrap_or("dev"))
}

fn main() {
    // `berth --version` needs no parser: answer before building the command tree.
    let mut args = std::env::args_os();
    if args.len() == 2 && args.nth(1).is_some_and(|a| a == "--version" || a == "-v") {
        println!("{}", version_line());
        return;
    }
    // Like any Unix filter (and the docker CLI), die quietly when the reader of our output
    // goes away (`berth export x | head`); relays of sockets turn this off again.
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                // Docker: a bad flag is 125, a missing argument or unknown command 1.
                ErrorKind::MissingRequiredArgument | ErrorKind::InvalidSubcommand | ErrorKind::TooFewValues | ErrorKind::WrongNumberOfValues => 1,
                _ => 125,
            };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let code = run_with_autostart(&cli);
    term::restore();
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

fn run_with_autostart(cli: &Cli) -> i32 {
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            if let Some(client::Error::Connect { .. }) = e.downcast_ref::<client::Error>() {
                if cli.host.is_none() && hints::autostart_berthd() {
                    return dispatch(cli).unwrap_or_else(|e| report(cli, e));
                }
            }
            report(cli, e)
        }
    }
}

/// Prints an error as the docker CLI does (plus a hint on a terminal); returns the exit code.
fn report(cli: &Cli, e: anyhow::Error) -> i32 {
    term::restore();
    if let Some(Exit(code)) = e.downcast_ref::<Exit>() {
        return *code;
    }
    let msg = e.to_string();
    let _ = writeln!(std::io::stderr(), "{}", if term::color_err() { term::red(&msg) } else { msg });
    if term::color_err() {
        if let Some(h) = hints::hint(cli, &e) {
            let _ = writeln!(std::io::stderr(), "{}", term::dim(&h));
        }
    }
    1
}

fn ctx(cli: &Cli) -> Result<Ctx> {
    let host = client::resolve_host(cli.host.as_deref());
    Ok(Ctx { client: Client::new(&host)? })
}

fn dispatch(cli: &Cli) -> Result<i32> {
    if cli.version {
        println!("{}", version_line());
        return Ok(0);
    }
    let Some(cmd) = &cli.cmd else {
        Cli::command().print_help()?;
        return Ok(0);
    };
    let c = &ctx(cli)?;
    match cmd {
        Cmd::Run(a) => cmd::run::run(c, a),
        Cmd::Create(a) => cmd::run::create(c, a),
        Cmd::Start(a) => cmd::run::start(c, a),
        Cmd::Attach(a) => cmd::run::attach(c, a),
        Cmd::Stop(a) => cmd::lifecycle::stop(c, a, false),
        Cmd::Restart(a) => cmd::lifecycle::stop(c, a, true),
        Cmd::Kill(a) => cmd::lifecycle::kill(c, a),
        Cmd::Rm(a) => cmd::lifecycle::rm(c, a),
        Cmd::Pause(a) => cmd::lifecycle::pause(c, a, true),
        Cmd::Unpause(a) => cmd::lifecycle::pause(c, a, false),
        Cmd::Wait(a) => cmd::lifecycle::wait(c, a),
        Cmd::Rename(a) => cmd::lifecycle::rename(c, a),
        Cmd::Update(a) => cmd::lifecycle::update(c, a),
        Cmd::Ps(a) => cmd::ps::ps(c, a),
        Cmd::Inspect(a) => cmd::inspect::inspect(c, a, None),
        Cmd::Logs(a) => cmd::logs::logs(c, a),
        Cmd::Exec(a) => cmd::exec::exec(c, a),
        Cmd::Top(a) => cmd::lifecycle::top(c, a),
        Cmd::Stats(a) => cmd::stats::stats(c, a),
        Cmd::Cp(a) => cmd::cp::cp(c, a),
        Cmd::Diff(a) => cmd::lifecycle::diff(c, a),
        Cmd::Commit(a) => cmd::lifecycle::commit(c, a),
        Cmd::Export(a) => cmd::lifecycle::export(c, a),
        Cmd::Port(a) => cmd::lifecycle::port(c, a),
        Cmd::Images(a) => cmd::images::images(c, a),
        Cmd::Rmi(a) => cmd::images::rmi(c, a),
        Cmd::Tag(a) => cmd::images::tag(c, a),
        Cmd::History(a) => cmd::images::history(c, a),
        Cmd::Import(a) => cmd::transfer::import(c, a),
        Cmd::Save(a) => cmd::transfer::save(c, a),
        Cmd::Load(a) => cmd::transfer::load(c, a),
        Cmd::Pull(a) => cmd::transfer::pull(c, a),
        Cmd::Push(a) => cmd::transfer::push(c, a),
        Cmd::Login(a) => cmd::login::login(c, a),
        Cmd::Search(a) => cmd::images::search(c, a),
        Cmd::Logout(a) => cmd::login::logout(c, a),
        Cmd::Info(a) => cmd::system::info(c, a),
        Cmd::Version(a) => cmd::system::version(c, a),
        Cmd::Events(a) => cmd::system::events(c, a),
        Cmd::Container { cmd } => container_cmd(c, cmd),
        Cmd::Image { cmd } => image_cmd(c, cmd),
        Cmd::Network { cmd } => match cmd {
            NetworkCmd::Connect(a) => cmd::network::connect(c, a),
            NetworkCmd::Create(a) => cmd::network::create(c, a),
            NetworkCmd::Disconnect(a) => cmd::network::disconnect(c, a),
            NetworkCmd::Inspect(a) => cmd::network::inspect(c, a),
            NetworkCmd::Ls(a) => cmd::network::ls(c, a),
            NetworkCmd::Prune(a) => cmd::network::prune(c, a),
            NetworkCmd::Rm(a) => cmd::network::rm(c, a),
        },
        Cmd::Volume { cmd } => match cmd {
            VolumeCmd::Create(a) => cmd::volume::create(c, a),
            VolumeCmd::Ls(a) => cmd::volume::ls(c, a),
            VolumeCmd::Inspect(a) => cmd::volume::inspect(c, a),
            VolumeCmd::Rm(a) => cmd::volume::rm(c, a),
            VolumeCmd::Prune(a) => cmd::volume::prune(c, a),
        },
        Cmd::System { cmd } => match cmd {
            SystemCmd::Df(a) => cmd::system::df(c, a),
            SystemCmd::Info(a) => cmd::system::info(c, a),
            SystemCmd::Events(a) => cmd::system::events(c, a),
            SystemCmd::Prune(a) => cmd::system::prune(c, a),
            SystemCmd::Service { args } => hints::service(args),
        },
        Cmd::Completion { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "berth", &mut std::io::stdout());
            Ok(0)
        }
    }
}

fn container_cmd(c: &Ctx, cmd: &ContainerCmd) -> Result<i32> {
    use ContainerCmd as C;
    match cmd {
        C::Run(a) => cmd::run::run(c, a),
        C::Create(a) => cmd::run::create(c, a),
        C::Start(a) => cmd::run::start(c, a),
        C::Attach(a) => cmd::run::attach(c, a),
        C::Stop(a) => cmd::lifecycle::stop(c, a, false),
        C::Restart(a) => cmd::lifecycle::stop(c, a, true),
        C::Kill(a) => cmd::lifecycle::kill(c, a),
        C::Rm(a) => cmd::lifecycle::rm(c, a),
        C::Pause(a) => cmd::lifecycle::pause(c, a, true),
        C::Unpause(a) => cmd::lifecycle::pause(c, a, false),
        C::Wait(a) => cmd::lifecycle::wait(c, a),
        C::Rename(a) => cmd::lifecycle::rename(c, a),
        C::Update(a) => cmd::lifecycle::update(c, a),
        C::Ls(a) => cmd::ps::ps(c, a),
        C::Inspect(a) => cmd::inspect::inspect(c, a, Some("container")),
        C::Logs(a) => cmd::logs::logs(c, a),
        C::Exec(a) => cmd::exec::exec(c, a),
        C::Top(a) => cmd::lifecycle::top(c, a),
        C::Stats(a) => cmd::stats::stats(c, a),
        C::Cp(a) => cmd::cp::cp(c, a),
        C::Diff(a) => cmd::lifecycle::diff(c, a),
        C::Commit(a) => cmd::lifecycle::commit(c, a),
        C::Export(a) => cmd::lifecycle::export(c, a),
        C::Port(a) => cmd::lifecycle::port(c, a),
        C::Prune(a) => cmd::lifecycle::prune(c, a),
    }
}

fn image_cmd(c: &Ctx, cmd: &ImageCmd) -> Result<i32> {
    use ImageCmd as I;
    match cmd {
        I::Ls(a) => cmd::images::images(c, a),
        I::Rm(a) => cmd::images::rmi(c, a),
        I::Tag(a) => cmd::images::tag(c, a),
        I::History(a) => cmd::images::history(c, a),
        I::Import(a) => cmd::transfer::import(c, a),
        I::Save(a) => cmd::transfer::save(c, a),
        I::Load(a) => cmd::transfer::load(c, a),
        I::Pull(a) => cmd::transfer::pull(c, a),
        I::Push(a) => cmd::transfer::push(c, a),
        I::Inspect(a) => cmd::inspect::inspect(c, a, Some("image")),
        I::Prune(a) => cmd::images::prune(c, a),
    }
}
