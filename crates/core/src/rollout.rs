//! Thread persistence: one append-only JSONL file per thread under `$TALLY_HOME/sessions/`.
//! A torn last line (a crash mid-write) is skipped with a warning, never a failure to load.

use crate::model::ResponseItem;
use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use tally_protocol::types::{
    DynamicToolSpec, SessionSource, ThreadGoal, ThreadItem, ThreadTokenUsage, Turn, TurnStatus,
};

/// What a thread is, recorded once as the first line of its rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThreadMeta {
    pub id: String,
    pub created_at: i64,
    pub cwd: String,
    pub model: String,
    pub model_provider: String,
    pub source: SessionSource,
    pub originator: Option<String>,
    pub forked_from_id: Option<String>,
    pub cli_version: String,
    #[serde(default)]
    pub thread_source: Option<String>,
    #[serde(default)]
    pub reasoning_effort: Option<String>,
    /// Tools the client declared on `thread/start` (offered again on resume; a fork copies them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dynamic_tools: Vec<DynamicToolSpec>,
}

/// One line of a rollout file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case")]
pub enum RolloutLine {
    SessionMeta(ThreadMeta),
    TurnStarted {
        turn_id: String,
        started_at: i64,
    },
    Item {
        turn_id: String,
        item: ThreadItem,
    },
    ResponseItem(ResponseItem),
    TokenUsage(ThreadTokenUsage),
    TurnCompleted(Turn),
    SettingsChanged {
        model: String,
        cwd: String,
    },
    /// A compaction replaced the model history with `replacement` (the summary).
    Compacted {
        replacement: Vec<ResponseItem>,
    },
    /// The thread's goal was created or changed.
    GoalSet(GoalRecord),
    /// The thread's goal was cleared.
    GoalCleared,
    /// A client named the thread (`thread/name/set`; the last line wins).
    ThreadName {
        name: String,
    },
    /// The agent-identity task the thread signs its backend requests with (the last line wins).
    AgentTask(AgentTaskRecord),
}

/// A thread's agent task: the runtime that registered it and the task id. Never a key or a
/// signature; a task of another runtime than the current one is not used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentTaskRecord {
    pub agent_runtime_id: String,
    pub task_id: String,
}

/// A thread's goal with the id analytics knows it by (never shown to clients).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoalRecord {
    pub goal_id: String,
    pub goal: ThreadGoal,
}

/// Everything a rollout file holds, folded into a thread's state.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedRollout {
    pub meta: ThreadMeta,
    pub turns: Vec<Turn>,
    pub history: Vec<ResponseItem>,
    pub token_usage: Option<ThreadTokenUsage>,
    /// History length when each turn started, to cut history at a turn boundary.
    pub history_marks: Vec<(String, usize)>,
    pub updated_at: i64,
    /// Lines that could not be read (a torn tail after a crash).
    pub skipped_lines: usize,
    /// The thread's goal, if one is set.
    pub goal: Option<GoalRecord>,
    /// The name a client gave the thread.
    pub name: Option<String>,
    /// The thread's agent task, if one was registered (agent identity on).
    pub agent_task: Option<AgentTaskRecord>,
}

impl LoadedRollout {
    /// The first user message, shown as the thread's preview.
    pub fn preview(&self) -> String {
        preview_of(&self.turns)
    }
}

/// The preview text of a thread: its first user message.
pub fn preview_of(turns: &[Turn]) -> String {
    turns
        .iter()
        .flat_map(|t| t.items.iter())
        .find_map(|item| match item {
            ThreadItem::UserMessage { content, .. } => content.iter().find_map(|c| c.as_text()),
            _ => None,
        })
        .map(|t| t.chars().take(200).collect())
        .unwrap_or_default()
}

/// Appends lines to one thread's rollout file.
#[derive(Debug)]
pub struct RolloutWriter {
    path: PathBuf,
    file: File,
}

impl RolloutWriter {
    /// Creates (or reopens for append) the rollout at `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The file this writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line; each line is written with a single `write_all` so a crash tears at most the last.
    pub fn append(&mut self, line: &RolloutLine) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.file.write_all(&bytes)
    }

    /// Flushes to disk (at turn boundaries).
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

/// The rollout path of a thread in `dir`.
pub fn rollout_path(dir: &Path, thread_id: &str) -> PathBuf {
    dir.join(format!("rollout-{thread_id}.jsonl"))
}

/// Reads a rollout file, folding its lines into turns and history.
pub fn load_rollout(path: &Path) -> std::io::Result<LoadedRollout> {
    let file = File::open(path)?;
    let updated_at = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut fold = RolloutFold::default();
    for (n, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<RolloutLine>(&line) {
            Ok(l) => fold.apply(l),
            Err(e) => {
                tracing::warn!(file = %path.display(), line = n + 1, error = %e, "skipping unreadable rollout line");
                fold.skipped += 1;
            }
        }
    }
    fold.finish(path, updated_at)
}

#[derive(Default)]
struct RolloutFold {
    meta: Option<ThreadMeta>,
    turns: Vec<Turn>,
    history: Vec<ResponseItem>,
    token_usage: Option<ThreadTokenUsage>,
    history_marks: Vec<(String, usize)>,
    goal: Option<GoalRecord>,
    name: Option<String>,
    agent_task: Option<AgentTaskRecord>,
    skipped: usize,
}

impl RolloutFold {
    fn apply(&mut self, line: RolloutLine) {
        match line {
            RolloutLine::SessionMeta(m) => self.meta = Some(m),
            RolloutLine::TurnStarted {
                turn_id,
                started_at,
            } => {
                self.history_marks
                    .push((turn_id.clone(), self.history.len()));
                self.turns.push(Turn {
                    id: turn_id,
                    root_turn_id: None,
                    items: Vec::new(),
                    items_view: Default::default(),
                    status: TurnStatus::InProgress,
                    error: None,
                    started_at: Some(started_at),
                    completed_at: None,
                    duration_ms: None,
                })
            }
            RolloutLine::Item { turn_id, item } => {
                if let Some(turn) = self.turns.iter_mut().rev().find(|t| t.id == turn_id) {
                    turn.items.push(item);
                }
            }
            RolloutLine::ResponseItem(item) => self.history.push(item),
            RolloutLine::TokenUsage(u) => self.token_usage = Some(u),
            RolloutLine::TurnCompleted(done) => {
                if let Some(turn) = self.turns.iter_mut().rev().find(|t| t.id == done.id) {
                    turn.status = done.status;
                    turn.error = done.error;
                    turn.completed_at = done.completed_at;
                    turn.duration_ms = done.duration_ms;
                }
            }
            RolloutLine::SettingsChanged { model, cwd } => {
                if let Some(meta) = &mut self.meta {
                    meta.model = model;
                    meta.cwd = cwd;
                }
            }
            RolloutLine::Compacted { replacement } => {
                self.history = replacement;
                // History before the compaction is gone: earlier turns all start at its beginning.
                for (_, mark) in &mut self.history_marks {
                    *mark = 0;
                }
            }
            RolloutLine::GoalSet(goal) => self.goal = Some(goal),
            RolloutLine::GoalCleared => self.goal = None,
            RolloutLine::ThreadName { name } => self.name = Some(name),
            RolloutLine::AgentTask(task) => self.agent_task = Some(task),
        }
    }

    fn finish(mut self, path: &Path, updated_at: i64) -> std::io::Result<LoadedRollout> {
        let meta = self.meta.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: no session_meta line", path.display()),
            )
        })?;
        // A turn still in progress when the process died was cut short.
        for turn in &mut self.turns {
            if turn.status == TurnStatus::InProgress {
                turn.status = TurnStatus::Interrupted;
            }
        }
        Ok(LoadedRollout {
            meta,
            turns: self.turns,
            history: self.history,
            token_usage: self.token_usage,
            history_marks: self.history_marks,
            updated_at,
            skipped_lines: self.skipped,
            goal: self.goal,
            name: self.name,
            agent_task: self.agent_task,
        })
    }
}

/// Reads just the first line (the meta) of a rollout, for listing.
pub fn read_meta(path: &Path) -> std::io::Result<ThreadMeta> {
    let mut first = String::new();
    BufReader::new(File::open(path)?).read_line(&mut first)?;
    match serde_json::from_str::<RolloutLine>(&first) {
        Ok(RolloutLine::SessionMeta(m)) => Ok(m),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: first line is not session_meta", path.display()),
        )),
    }
}

/// The last `agent_task` line of a rollout, without folding the rest (other lines are not
/// parsed; unreadable ones are skipped).
pub fn read_agent_task(path: &Path) -> std::io::Result<Option<AgentTaskRecord>> {
    const PREFIX: &[u8] = br#"{"type":"agent_task","#;
    let mut found = None;
    for line in BufReader::new(File::open(path)?).split(b'\n') {
        let line = line?;
        if !line.starts_with(PREFIX) {
            continue;
        }
        if let Ok(RolloutLine::AgentTask(task)) = serde_json::from_slice::<RolloutLine>(&line) {
            found = Some(task);
        }
    }
    Ok(found)
}

#[cfg(test)]
#[path = "rollout_tests.rs"]
mod tests;
