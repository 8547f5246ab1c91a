//! The process: Docker's merge of the request Config with the image's, the command line
//! (Entrypoint + Cmd), the environment, the working directory.

use berth_api::container_config::ContainerConfig;

use crate::error::{Error, Result};
use crate::input::ImageDefaults;

/// The PATH a container gets when neither the image nor the request sets one.
pub const DEFAULT_PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's create-time merge of the request Config with the image's, then its checks: what
/// `docker inspect` shows as `Config`. Request values win; lists and maps are unioned (request
/// first); `Entrypoint: [""]` drops the image's entrypoint *and* its Cmd; with neither an
/// entrypoint nor a command the answer is Docker's "No command specified".
pub fn merge_image_config(config: &ContainerConfig, image: &ImageDefaults) -> Result<ContainerConfig> {
    let mut c = config.clone();
    if c.user.is_empty() {
        c.user = image.user.clone();
    }
    match (&mut c.exposed_ports, &image.exposed_ports) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => {
            for (k, v) in theirs {
                mine.entry(k.clone()).or_insert(*v);
            }
        }
        (mine, theirs) if mine.as_ref().is_none_or(|m| m.is_empty()) => *mine = theirs.clone(),
        _ => {}
    }
    c.env = merge_env(c.env.take(), Some(&image.env[..]).filter(|e| !e.is_empty()));
    let labels = c.labels.get_or_insert_with(Default::default);
    for (k, v) in image.labels.iter().flatten() {
        labels.entry(k.clone()).or_insert_with(|| v.clone());
    }
    // `[""]` is not empty here, so it keeps the image's Cmd out; it is cleared just below.
    if c.entrypoint.as_ref().is_none_or(Vec::is_empty) {
        if c.cmd.as_ref().is_none_or(Vec::is_empty) {
            c.cmd = image.cmd.clone();
            c.args_escaped = image.args_escaped;
        }
        if c.entrypoint.is_none() {
            c.entrypoint = image.entrypoint.clone();
        }
    }
    if let Some(theirs) = &image.healthcheck {
        match &mut c.healthcheck {
            None => c.healthcheck = Some(theirs.clone()),
            Some(h) => {
                if h.test.as_ref().is_none_or(Vec::is_empty) {
                    h.test = theirs.test.clone();
                }
                for (mine, their) in [
                    (&mut h.interval, theirs.interval),
                    (&mut h.timeout, theirs.timeout),
                    (&mut h.start_period, theirs.start_period),
                    (&mut h.start_interval, theirs.start_interval),
                    (&mut h.retries, theirs.retries),
                ] {
                    if *mine == 0 {
                        *mine = their;
                    }
                }
            }
        }
    }
    if c.working_dir.is_empty() {
        c.working_dir = image.working_dir.clone();
    }
    match (&mut c.volumes, &image.volumes) {
        (Some(mine), Some(theirs)) if !mine.is_empty() => mine.extend(theirs.clone()),
        (mine, theirs) if mine.as_ref().is_none_or(|m| m.is_empty()) => *mine = theirs.clone(),
        _ => {}
    }
    if c.stop_signal.is_empty() {
        c.stop_signal = image.stop_signal.clone().unwrap_or_default();
    }
    if c.entrypoint.as_deref() == Some(&[String::new()][..]) {
        c.entrypoint = None;
    }
    if c.entrypoint.as_ref().is_none_or(Vec::is_empty) && c.cmd.as_ref().is_none_or(Vec::is_empty) {
        return Err(Error::invalid("No command specified"));
    }
    Ok(c)
}

/// Request variables first, then the image's whose names the request does not set (a bare
/// `NAME` in the request counts as setting it).
fn merge_env(mine: Option<Vec<String>>, theirs: Option<&[String]>) -> Option<Vec<String>> {
    let Some(mut mine) = mine.filter(|m| !m.is_empty()) else {
        return theirs.map(<[String]>::to_vec);
    };
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_string();
    let keys: Vec<String> = mine.iter().map(|e| key(e)).collect();
    for e in theirs.into_iter().flatten() {
        if !keys.contains(&key(e)) {
            mine.push(e.clone());
        }
    }
    Some(mine)
}

/// Entrypoint + Cmd of a merged Config.
pub(crate) fn command(c: &ContainerConfig) -> Result<Vec<String>> {
    let mut args: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    args.extend(c.cmd.iter().flatten().cloned());
    if args.is_empty() {
        return Err(Error::invalid("No command specified"));
    }
    Ok(args)
}

/// The process environment: PATH, HOSTNAME and (with a TTY) TERM=xterm, each replaced by the
/// Config's variable of the same name; the Config's other variables follow in order; a bare
/// `NAME` removes `NAME` (Docker's `ReplaceOrAppendEnvValues`). Last, HOME from the user's
/// passwd entry when nothing set it: runc does that in the container, berth-runtime does not.
pub(crate) fn environment(c: &ContainerConfig, hostname: &str, home: &str) -> Vec<String> {
    let mut env = docker_environment(c, hostname);
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    env
}

fn docker_environment(c: &ContainerConfig, hostname: &str) -> Vec<String> {
    let mut env: Vec<Option<String>> = vec![Some(DEFAULT_PATH_ENV.into()), Some(format!("HOSTNAME={hostname}"))];
    if c.tty {
        env.push(Some("TERM=xterm".into()));
    }
    let defaults = env.len();
    let index_of = |env: &[Option<String>], k: &str| {
        env[..defaults].iter().position(|e| e.as_deref().is_some_and(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k)))
    };
    for e in c.env.iter().flatten() {
        match e.split_once('=') {
            None => {
                if let Some(i) = index_of(&env, e) {
                    env[i] = None;
                }
            }
            Some((k, _)) => match index_of(&env, k) {
                Some(i) => env[i] = Some(e.clone()),
                None => env.push(Some(e.clone())),
            },
        }
    }
    env.into_iter().flatten().collect()
}

/// The working directory (absolute, checked like Docker; "/" when unset).
pub(crate) fn cwd(c: &ContainerConfig) -> String {
    if c.working_dir.is_empty() {
        "/".into()
    } else {
        c.working_dir.clone()
    }
}

/// Docker refuses a relative WorkingDir in the request.
pub(crate) fn check_working_dir(request: &ContainerConfig) -> Result<()> {
    let wd = &request.working_dir;
    if !wd.is_empty() && !wd.starts_with('/') {
        return Err(Error::invalid(format!(
            "the working directory '{wd}' is invalid, it needs to be an absolute path"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::container_config::HealthConfig;

    fn v(s: &[&str]) -> Option<Vec<String>> {
        Some(s.iter().map(|s| s.to_string()).collect())
    }

    fn image() -> ImageDefaults {
        ImageDefaults {
            env: v(&["PATH=/img/bin", "LANG=C", "A=image"]).unwrap(),
            cmd: v(&["nginx", "-g", "daemon off;"]),
            entrypoint: v(&["/docker-entrypoint.sh"]),
            working_dir: "/srv".into(),
            user: "nginx".into(),
            stop_signal: Some("SIGQUIT".into()),
            labels: Some([("maintainer".to_string(), "x".to_string())].into()),
            ..Default::default()
        }
    }

    fn merged(c: ContainerConfig) -> Result<ContainerConfig> {
        merge_image_config(&c, &image())
    }

    #[test]
    fn command_resolution_like_docker() {
        // Nothing given: the image's entrypoint and cmd.
        let c = merged(ContainerConfig::default()).unwrap();
        assert_eq!(command(&c).unwrap(), ["/docker-entrypoint.sh", "nginx", "-g", "daemon off;"]);
        // A command replaces the image's cmd, keeps its entrypoint.
        let c = merged(ContainerConfig { cmd: v(&["sh"]), ..Default::default() }).unwrap();
        assert_eq!(command(&c).unwrap(), ["/docker-entrypoint.sh", "sh"]);
        // An entrypoint drops the image's cmd too.
        let c = merged(ContainerConfig { entrypoint: v(&["top"]), ..Default::default() }).unwrap();
        assert_eq!(command(&c).unwrap(), ["top"]);
        let c = merged(ContainerConfig { entrypoint: v(&["top"]), cmd: v(&["-b"]), ..Default::default() }).unwrap();
        assert_eq!(command(&c).unwrap(), ["top", "-b"]);
        // [""] clears the entrypoint (and keeps the image's cmd out).
        let c = merged(ContainerConfig { entrypoint: v(&[""]), cmd: v(&["ls"]), ..Default::default() }).unwrap();
        assert_eq!(c.entrypoint, None);
        assert_eq!(command(&c).unwrap(), ["ls"]);
        let e = merged(ContainerConfig { entrypoint: v(&[""]), ..Default::default() }).unwrap_err();
        assert_eq!(e.to_string(), "No command specified");
        // [] (not null) is kept: the image's entrypoint is not inherited, its cmd is.
        let c = merged(ContainerConfig { entrypoint: v(&[]), ..Default::default() }).unwrap();
        assert_eq!(command(&c).unwrap(), ["nginx", "-g", "daemon off;"]);
        // No command anywhere.
        let e = merge_image_config(&ContainerConfig::default(), &ImageDefaults::default()).unwrap_err();
        assert!(matches!(e, Error::InvalidParameter(m) if m == "No command specified"));
    }

    #[test]
    fn merge_fills_the_rest_from_the_image() {
        let c = merged(ContainerConfig {
            env: v(&["A=mine", "B=2"]),
            labels: Some([("maintainer".to_string(), "me".to_string())].into()),
            healthcheck: Some(HealthConfig { retries: 3, ..Default::default() }),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.env, v(&["A=mine", "B=2", "PATH=/img/bin", "LANG=C"]));
        assert_eq!(c.user, "nginx");
        assert_eq!(c.working_dir, "/srv");
        assert_eq!(c.stop_signal, "SIGQUIT");
        assert_eq!(c.labels.unwrap()["maintainer"], "me");
        assert_eq!(c.healthcheck.unwrap().retries, 3);
        // Merging an already merged config with no image changes nothing.
        let once = merged(ContainerConfig { env: v(&["X=1"]), ..Default::default() }).unwrap();
        assert_eq!(merge_image_config(&once, &ImageDefaults::default()).unwrap(), once);
    }

    #[test]
    fn environment_like_docker() {
        let c = ContainerConfig { env: v(&["A=1", "PATH=/mine", "B=2"]), ..Default::default() };
        assert_eq!(docker_environment(&c, "abc"), ["PATH=/mine", "HOSTNAME=abc", "A=1", "B=2"]);
        let c = ContainerConfig { tty: true, env: v(&["TERM=vt100", "HOSTNAME=h2"]), ..Default::default() };
        assert_eq!(docker_environment(&c, "abc"), [DEFAULT_PATH_ENV, "HOSTNAME=h2", "TERM=vt100"]);
        // A bare name unsets a default; other bare names are dropped.
        let c = ContainerConfig { tty: true, env: v(&["PATH", "NOPE", "X=1"]), ..Default::default() };
        assert_eq!(docker_environment(&c, "abc"), ["HOSTNAME=abc", "TERM=xterm", "X=1"]);
        let c = ContainerConfig::default();
        assert_eq!(environment(&c, "abc", "/root"), [DEFAULT_PATH_ENV, "HOSTNAME=abc", "HOME=/root"]);
        let c = ContainerConfig { env: v(&["HOME=/x"]), ..Default::default() };
        assert_eq!(environment(&c, "abc", "/root"), [DEFAULT_PATH_ENV, "HOSTNAME=abc", "HOME=/x"]);
    }

    #[test]
    fn working_dir() {
        assert_eq!(cwd(&ContainerConfig::default()), "/");
        assert!(check_working_dir(&ContainerConfig { working_dir: "/a".into(), ..Default::default() }).is_ok());
        let e = check_working_dir(&ContainerConfig { working_dir: "a/b".into(), ..Default::default() }).unwrap_err();
        assert_eq!(e.to_string(), "the working directory 'a/b' is invalid, it needs to be an absolute path");
    }
}
