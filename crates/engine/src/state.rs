//! The container lifecycle as an explicit state machine. Every transition the engine makes goes
//! through `Status::can_become`, and the record is persisted in the same store transaction.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "created" => Status::Created,
            "running" => Status::Running,
            "paused" => Status::Paused,
            "restarting" => Status::Restarting,
            "removing" => Status::Removing,
            "exited" => Status::Exited,
            "dead" => Status::Dead,
            _ => return None,
        })
    }

    /// A process (the monitor and the container's init) exists in these states.
    pub fn is_live(self) -> bool {
        matches!(self, Status::Running | Status::Paused)
    }

    /// The allowed edges of the lifecycle.
    pub fn can_become(self, next: Status) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Created | Exited | Restarting, Running)
                | (Running, Paused)
                | (Paused, Running)
                | (Running | Paused, Exited)
                | (Exited, Restarting)
                | (Restarting, Exited)
                | (Created | Exited | Dead | Restarting, Removing)
                | (Removing, Dead)
                | (Created, Exited)
        )
    }

    pub fn check(self, next: Status) -> Result<()> {
        if self.can_become(next) {
            Ok(())
        } else {
            Err(Error::Conflict(format!("container cannot go from {} to {}", self.as_str(), next.as_str())))
        }
    }
}

/// What `docker inspect` shows under State, as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    pub pid: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub error: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl Default for State {
    fn default() -> State {
        State { status: Status::Created, pid: 0, exit_code: 0, oom_killed: false, error: String::new(), started_at: None, finished_at: None }
    }
}

#[cfg(test)]
mod tests {
    use super::Status::*;

    #[test]
    fn lifecycle_edges() {
        assert!(Created.can_become(Running));
        assert!(Running.can_become(Paused));
        assert!(Paused.can_become(Exited));
        assert!(Exited.can_become(Running));
        assert!(!Running.can_become(Removing), "a running container is stopped before removal");
        assert!(!Removing.can_become(Running));
        assert!(!Created.can_become(Paused));
        assert!(Exited.check(Paused).is_err());
    }
}
