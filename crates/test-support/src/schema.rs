//! Validation of every message the app-server sends against the official Codex app-server JSON Schema
//! (`shared/codex-protocol-schema/`, see its README), plus a strict pass that rejects undeclared keys.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex, OnceLock};

use jsonschema::{Draft, ValidatorMap};
use serde_json::Value;

use crate::strict::StrictDoc;

/// Environment variable that overrides where the schema folder is looked up.
pub const SCHEMA_DIR_ENV: &str = "TALLY_SCHEMA_DIR";

/// How many schema violations one [`SchemaError`] lists at most.
const MAX_PROBLEMS: usize = 12;

/// Which export of the schema to validate against: `stable/` for clients that did not opt into
/// `experimentalApi`, `experimental/` for those that did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaMode {
    /// The default export (`stable/`).
    Stable,
    /// The `--experimental` export (`experimental/`).
    Experimental,
}

impl SchemaMode {
    /// The folder name of this export inside the schema directory.
    pub fn folder(self) -> &'static str {
        match self {
            SchemaMode::Stable => "stable",
            SchemaMode::Experimental => "experimental",
        }
    }
}

/// A message that does not conform to the protocol schema (or cannot be classified), with every reason found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    /// What was being checked, e.g. ``notification `turn/started` `` or ``response to `thread/start` (id 2)``.
    pub subject: String,
    /// The schema file used, relative to the schema directory (`stable/ServerNotification.json`); empty if none.
    pub schema_file: String,
    /// Schema violations, each naming the instance path and the schema path.
    pub violations: Vec<String>,
    /// JSON pointers (into the checked value) of keys the schema does not declare (the strict pass).
    pub unknown_keys: Vec<String>,
    /// The offending message, compact and truncated, for context.
    pub message: String,
}

impl SchemaError {
    /// Builds an error that is not about schema content (unparseable message, unknown id, unknown method).
    fn other(subject: impl Into<String>, problem: impl Into<String>, message: &Value) -> Self {
        SchemaError {
            subject: subject.into(),
            schema_file: String::new(),
            violations: vec![problem.into()],
            unknown_keys: Vec::new(),
            message: excerpt(message),
        }
    }

    /// Merges another error's findings into this one.
    fn absorb(&mut self, other: SchemaError) {
        if self.schema_file.is_empty() {
            self.schema_file = other.schema_file;
        } else if !other.schema_file.is_empty() && other.schema_file != self.schema_file {
            self.schema_file = format!("{} + {}", self.schema_file, other.schema_file);
        }
        self.violations.extend(other.violations);
        self.unknown_keys.extend(other.unknown_keys);
    }
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} does not conform to the Codex protocol schema",
            self.subject
        )?;
        if !self.schema_file.is_empty() {
            write!(f, " ({})", self.schema_file)?;
        }
        writeln!(f, ":")?;
        for violation in &self.violations {
            writeln!(f, "  - {violation}")?;
        }
        for key in &self.unknown_keys {
            writeln!(
                f,
                "  - unknown key at `{key}` (strict pass: no schema branch declares it)"
            )?;
        }
        write!(f, "  message: {}", self.message)
    }
}

impl std::error::Error for SchemaError {}

/// A compact, bounded rendering of a message for error output.
fn excerpt(message: &Value) -> String {
    let text = message.to_string();
    const LIMIT: usize = 600;
    if text.len() <= LIMIT {
        return text;
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
}

/// One loaded schema file: the document and a validator for each reachable subschema.
struct SchemaFile {
    /// Path relative to the schema directory, for messages.
    name: String,
    /// The parsed document.
    doc: Value,
    /// Compiled validators keyed by JSON pointer; `#` is the whole file.
    map: ValidatorMap,
}

impl SchemaFile {
    /// Reads and compiles one file; panics (test setup error) if it is missing or not a valid schema.
    fn load(dir: &Path, name: &str) -> SchemaFile {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read protocol schema file {}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("protocol schema file {} is not JSON: {e}", path.display()));
        let map = jsonschema::options()
            .with_draft(Draft::Draft7)
            .should_validate_formats(false)
            .build_map(&doc)
            .unwrap_or_else(|e| panic!("cannot compile protocol schema {}: {e}", path.display()));
        SchemaFile {
            name: name.to_string(),
            doc,
            map,
        }
    }

    /// Validates `value` against the subschema at `ptr` and runs the strict pass from `strict_start`.
    fn check(
        &self,
        ptr: &str,
        value: &Value,
        strict_start: &[&str],
        extra_top_level: &[&str],
        pointer_prefix: &str,
    ) -> (Vec<String>, Vec<String>) {
        let mut violations = Vec::new();
        match self.map.get(ptr) {
            Some(validator) => {
                for error in validator.iter_errors(value).take(MAX_PROBLEMS) {
                    violations.push(format!(
                        "at `{pointer_prefix}{}`: {} (schema path `{}`)",
                        error.instance_path(),
                        error,
                        error.schema_path()
                    ));
                }
            }
            None => violations.push(format!("no compiled subschema `{ptr}` in {}", self.name)),
        }
        let strict = StrictDoc {
            doc: &self.doc,
            map: &self.map,
        };
        let unknown = strict
            .unknown_keys(strict_start, value, extra_top_level)
            .into_iter()
            .map(|p| format!("{pointer_prefix}{p}"))
            .collect();
        (violations, unknown)
    }

    /// Maps each `method` of the top-level `oneOf` to its branch index.
    fn method_branches(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        if let Some(Value::Array(branches)) = self.doc.get("oneOf") {
            for (i, branch) in branches.iter().enumerate() {
                if let Some(Value::Array(methods)) = branch.pointer("/properties/method/enum") {
                    for method in methods.iter().filter_map(Value::as_str) {
                        out.insert(method.to_string(), i);
                    }
                }
            }
        }
        out
    }
}

/// Per-mode data derived from the schema files once.
struct ModeData {
    /// `ServerNotification.json` method → `oneOf` index.
    notification_branches: OnceLock<HashMap<String, usize>>,
    /// `ServerRequest.json` method → `oneOf` index.
    request_branches: OnceLock<HashMap<String, usize>>,
    /// Client method → response schema file (relative to the mode folder).
    response_files: OnceLock<HashMap<String, String>>,
}

impl ModeData {
    fn new() -> Self {
        ModeData {
            notification_branches: OnceLock::new(),
            request_branches: OnceLock::new(),
            response_files: OnceLock::new(),
        }
    }
}

/// Client methods whose params type is null (or does not name the response), mapped by hand to their
/// response type, as `(method, file under the mode folder)`.
const HAND_MAPPED_RESPONSES: &[(&str, &str)] = &[
    ("initialize", "v1/InitializeResponse.json"),
    ("config/batchWrite", "v2/ConfigWriteResponse.json"),
    ("config/value/write", "v2/ConfigWriteResponse.json"),
    ("account/logout", "v2/LogoutAccountResponse.json"),
    (
        "account/rateLimits/read",
        "v2/GetAccountRateLimitsResponse.json",
    ),
    (
        "account/gatewayOAuth/cancel",
        "v2/GatewayOAuthCancelResponse.json",
    ),
    (
        "account/securitySetup/read",
        "v2/GetAccountSecuritySetupResponse.json",
    ),
    (
        "account/workspaceMessages/read",
        "v2/GetWorkspaceMessagesResponse.json",
    ),
    (
        "config/mcpServer/reload",
        "v2/McpServerRefreshResponse.json",
    ),
    (
        "configRequirements/read",
        "v2/ConfigRequirementsReadResponse.json",
    ),
    (
        "windowsSandbox/readiness",
        "v2/WindowsSandboxReadinessResponse.json",
    ),
    (
        "externalAgentConfig/import/readHistories",
        "v2/ExternalAgentConfigImportHistoriesReadResponse.json",
    ),
    ("accountSession/list", "v2/AccountSessionsResponse.json"),
    ("memory/reset", "v2/MemoryResetResponse.json"),
    ("rollout/compress", "v2/RolloutCompressResponse.json"),
    (
        "remoteControl/status/read",
        "v2/RemoteControlStatusReadResponse.json",
    ),
];

/// The loaded Codex protocol schema (both exports), shared by every test in the process.
pub struct ProtocolSchemas {
    /// The schema directory (containing `stable/` and `experimental/`).
    dir: PathBuf,
    /// Loaded files keyed by path relative to `dir`; each compiled at most once.
    files: Mutex<HashMap<String, &'static OnceLock<SchemaFile>>>,
    /// Derived data for `stable/`.
    stable: ModeData,
    /// Derived data for `experimental/`.
    experimental: ModeData,
}

static SCHEMAS: LazyLock<ProtocolSchemas> = LazyLock::new(|| ProtocolSchemas {
    dir: locate_schema_dir(),
    files: Mutex::new(HashMap::new()),
    stable: ModeData::new(),
    experimental: ModeData::new(),
});

/// Finds the schema directory (`$TALLY_SCHEMA_DIR`, else `shared/codex-protocol-schema` beside the repository)
/// and panics loudly, naming every place looked at, if it is not there.
fn locate_schema_dir() -> PathBuf {
    let default =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/codex-protocol-schema");
    let (dir, how) = match std::env::var_os(SCHEMA_DIR_ENV) {
        Some(dir) if !dir.is_empty() => (PathBuf::from(dir), format!("${SCHEMA_DIR_ENV}")),
        _ => (default, format!("the default (${SCHEMA_DIR_ENV} unset)")),
    };
    let ok = dir.join("stable/ServerNotification.json").is_file()
        && dir.join("experimental/ServerNotification.json").is_file();
    if !ok {
        panic!(
            "\n\n*** Codex protocol schema NOT FOUND ***\nlooked in {} (from {how}) for stable/ and experimental/ \
             with ServerNotification.json.\nSet ${SCHEMA_DIR_ENV} to the codex-protocol-schema folder, or clone the \
             repository with shared/ beside it.\n",
            dir.display()
        );
    }
    dir.canonicalize().unwrap_or(dir)
}

impl ProtocolSchemas {
    /// The process-wide instance; panics with the paths looked at if the schema directory is missing.
    pub fn get() -> &'static ProtocolSchemas {
        &SCHEMAS
    }

    /// The schema directory in use.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn mode_data(&self, mode: SchemaMode) -> &ModeData {
        match mode {
            SchemaMode::Stable => &self.stable,
            SchemaMode::Experimental => &self.experimental,
        }
    }

    /// Whether `name` (relative to the mode folder) exists.
    fn has_file(&self, mode: SchemaMode, name: &str) -> bool {
        self.dir.join(mode.folder()).join(name).is_file()
    }

    /// Loads (once) and returns the file `name` of `mode`.
    fn file(&self, mode: SchemaMode, name: &str) -> &'static SchemaFile {
        let key = format!("{}/{name}", mode.folder());
        let cell: &'static OnceLock<SchemaFile> = {
            let mut files = self
                .files
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            files
                .entry(key.clone())
                .or_insert_with(|| Box::leak(Box::new(OnceLock::new())))
        };
        cell.get_or_init(|| SchemaFile::load(&self.dir, &key))
    }

    /// The schema file (relative to the mode folder, e.g. `v2/ThreadStartResponse.json`) that validates the
    /// `result` of client method `method`, or `None` if the method is unknown to this export.
    pub fn response_schema_file(&self, mode: SchemaMode, method: &str) -> Option<String> {
        self.response_files(mode).get(method).cloned()
    }

    /// Every client method of `mode` with its response schema file (see [`Self::response_schema_file`]).
    pub fn response_files(&self, mode: SchemaMode) -> &HashMap<String, String> {
        self.mode_data(mode)
            .response_files
            .get_or_init(|| self.derive_response_files(mode))
    }

    /// Derives method → response file from `ClientRequest.json`: `<X>Params` answers with `<X>Response`.
    fn derive_response_files(&self, mode: SchemaMode) -> HashMap<String, String> {
        let client = self.file(mode, "ClientRequest.json");
        let mut out = HashMap::new();
        let branches = client
            .doc
            .get("oneOf")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for branch in &branches {
            let Some(method) = branch
                .pointer("/properties/method/enum/0")
                .and_then(Value::as_str)
            else {
                continue;
            };
            let params = branch
                .pointer("/properties/params")
                .cloned()
                .unwrap_or(Value::Null);
            let Some(params_type) = first_ref_name(&params) else {
                continue;
            };
            let Some(stem) = params_type.strip_suffix("Params") else {
                continue;
            };
            let stem = stem.strip_prefix("Nullable").unwrap_or(stem);
            for candidate in [
                format!("v2/{stem}Response.json"),
                format!("{stem}Response.json"),
            ] {
                if self.has_file(mode, &candidate) {
                    out.insert(method.to_string(), candidate);
                    break;
                }
            }
        }
        for (method, file) in HAND_MAPPED_RESPONSES {
            if self.has_file(mode, file) {
                out.insert((*method).to_string(), (*file).to_string());
            }
        }
        out
    }

    /// The client methods `ClientRequest.json` of `mode` defines.
    pub fn client_methods(&self, mode: SchemaMode) -> Vec<String> {
        let client = self.file(mode, "ClientRequest.json");
        client
            .doc
            .get("oneOf")
            .and_then(Value::as_array)
            .map(|branches| {
                branches
                    .iter()
                    .filter_map(|b| {
                        b.pointer("/properties/method/enum/0")
                            .and_then(Value::as_str)
                    })
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Validates a server notification (`{"method","params","emittedAtMs"}`) against `ServerNotification.json`.
    pub fn validate_notification(
        &self,
        mode: SchemaMode,
        message: &Value,
    ) -> Result<(), SchemaError> {
        let file = self.file(mode, "ServerNotification.json");
        let branches = self
            .mode_data(mode)
            .notification_branches
            .get_or_init(|| file.method_branches());
        self.validate_method_message(file, branches, "notification", message)
    }

    /// Validates a server-to-client request (`{"id","method","params"}`) against `ServerRequest.json`.
    pub fn validate_server_request(
        &self,
        mode: SchemaMode,
        message: &Value,
    ) -> Result<(), SchemaError> {
        let file = self.file(mode, "ServerRequest.json");
        let branches = self
            .mode_data(mode)
            .request_branches
            .get_or_init(|| file.method_branches());
        self.validate_method_message(file, branches, "server request", message)
    }

    /// Shared body of notification and server-request validation: the whole message against the file, with
    /// the strict pass rooted at the method's `oneOf` branch.
    fn validate_method_message(
        &self,
        file: &SchemaFile,
        branches: &HashMap<String, usize>,
        kind: &str,
        message: &Value,
    ) -> Result<(), SchemaError> {
        let Some(method) = message.get("method").and_then(Value::as_str) else {
            return Err(SchemaError::other(
                kind,
                "message has no string `method`",
                message,
            ));
        };
        let subject = format!("{kind} `{method}`");
        let Some(index) = branches.get(method) else {
            return Err(SchemaError {
                subject,
                schema_file: file.name.clone(),
                violations: vec![format!(
                    "unknown method `{method}`: not defined by {}",
                    file.name
                )],
                unknown_keys: Vec::new(),
                message: excerpt(message),
            });
        };
        let branch_ptr = format!("#/oneOf/{index}");
        // Declared on the envelope itself (notifications: `emittedAtMs`).
        let mut top_level: Vec<&str> = file
            .doc
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        if kind == "notification" {
            top_level.push("emittedAtMs");
        }
        let (mut violations, unknown_keys) =
            file.check(&branch_ptr, message, &[&branch_ptr], &top_level, "");
        // The branch does not see the envelope's own properties (`emittedAtMs`): check those via the root.
        if let Some(root) = file.map.get("#") {
            for error in root.iter_errors(message).take(MAX_PROBLEMS) {
                let path = error.schema_path().to_string();
                if !path.starts_with("/oneOf") {
                    violations.push(format!(
                        "at `{}`: {error} (schema path `{path}`)",
                        error.instance_path()
                    ));
                }
            }
        }
        finish(subject, &file.name, violations, unknown_keys, message)
    }

    /// Validates a response to client method `client_method`: the envelope against `JSONRPCResponse.json`
    /// and `result` against the method's response type.
    pub fn validate_response(
        &self,
        mode: SchemaMode,
        client_method: &str,
        message: &Value,
    ) -> Result<(), SchemaError> {
        let id = message
            .get("id")
            .map(Value::to_string)
            .unwrap_or_else(|| "?".to_string());
        let subject = format!("response to `{client_method}` (id {id})");
        let envelope = self.file(mode, "JSONRPCResponse.json");
        let (mut violations, mut unknown_keys) = envelope.check("#", message, &["#"], &[], "");
        let mut schema_file = envelope.name.clone();
        match self.response_schema_file(mode, client_method) {
            None => violations.push(format!(
                "no response schema for client method `{client_method}` in {}/",
                mode.folder()
            )),
            Some(name) => {
                let file = self.file(mode, &name);
                schema_file = format!("{schema_file} + {}", file.name);
                match message.get("result") {
                    Some(result) => {
                        let (v, u) = file.check("#", result, &["#"], &[], "/result");
                        violations.extend(v);
                        unknown_keys.extend(u);
                    }
                    None => violations.push("response has no `result`".to_string()),
                }
            }
        }
        finish(subject, &schema_file, violations, unknown_keys, message)
    }

    /// Validates an error response (`{"id","error":{"code","message","data"?}}`) against `JSONRPCError.json`.
    pub fn validate_error(&self, mode: SchemaMode, message: &Value) -> Result<(), SchemaError> {
        let id = message
            .get("id")
            .map(Value::to_string)
            .unwrap_or_else(|| "?".to_string());
        let file = self.file(mode, "JSONRPCError.json");
        let (violations, unknown_keys) = file.check("#", message, &["#"], &[], "");
        finish(
            format!("error response (id {id})"),
            &file.name,
            violations,
            unknown_keys,
            message,
        )
    }
}

/// Turns collected findings into a result.
fn finish(
    subject: String,
    schema_file: &str,
    violations: Vec<String>,
    unknown_keys: Vec<String>,
    message: &Value,
) -> Result<(), SchemaError> {
    if violations.is_empty() && unknown_keys.is_empty() {
        return Ok(());
    }
    Err(SchemaError {
        subject,
        schema_file: schema_file.to_string(),
        violations,
        unknown_keys,
        message: excerpt(message),
    })
}

/// The definition name of the first `#/definitions/<Name>` reference in a schema fragment.
fn first_ref_name(schema: &Value) -> Option<String> {
    match schema {
        Value::Object(object) => {
            if let Some(name) = object
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/definitions/"))
            {
                return Some(name.to_string());
            }
            ["anyOf", "oneOf", "allOf"]
                .iter()
                .filter_map(|k| object.get(*k))
                .find_map(first_ref_name)
        }
        Value::Array(items) => items.iter().find_map(first_ref_name),
        _ => None,
    }
}

/// Checks a whole transcript: remembers client request ids and validates each server message by its kind.
pub struct TranscriptChecker {
    /// The export every message is validated against.
    mode: SchemaMode,
    /// Pending client requests: serialized id (exact JSON, so `1` and `"1"` differ) → method.
    pending: Mutex<HashMap<String, String>>,
}

impl TranscriptChecker {
    /// A checker validating against the given export.
    pub fn new(mode: SchemaMode) -> Self {
        TranscriptChecker {
            mode,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The export this checker validates against.
    pub fn mode(&self) -> SchemaMode {
        self.mode
    }

    /// Records a client→server message; requests (`id` + `method`) are remembered until answered.
    pub fn client_sent(&self, message: &Value) {
        if let (Some(id), Some(method)) = (
            message.get("id"),
            message.get("method").and_then(Value::as_str),
        ) {
            self.lock().insert(id.to_string(), method.to_string());
        }
    }

    /// Parses one client→server line (NDJSON / a text frame) and records it; panics if it is not JSON.
    pub fn client_sent_line(&self, line: &str) {
        let message: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("test client sent a line that is not JSON ({e}): {line}"));
        self.client_sent(&message);
    }

    /// Classifies a server→client message (notification, server request, response, error) and validates it;
    /// a response or error to an id the client never sent (or already answered) is an error.
    pub fn server_sent(&self, message: &Value) -> Result<(), SchemaError> {
        let schemas = ProtocolSchemas::get();
        let Some(object) = message.as_object() else {
            return Err(SchemaError::other(
                "server message",
                "not a JSON object",
                message,
            ));
        };
        if object.contains_key("method") {
            if object.contains_key("id") {
                return schemas.validate_server_request(self.mode, message);
            }
            return schemas.validate_notification(self.mode, message);
        }
        let Some(id) = object.get("id") else {
            return Err(SchemaError::other(
                "server message",
                "neither a notification/request (`method`) nor a response/error (`id`)",
                message,
            ));
        };
        // Tally answers a message whose id it cannot read (not JSON, not an object) with a
        // JSON-RPC 2.0 error whose id is null. Codex's schema has no such message (Codex drops
        // those lines silently), so validate only the error body and the parse/invalid codes.
        if id.is_null() {
            return null_id_error(message);
        }
        let method = self.lock().remove(&id.to_string());
        if object.contains_key("error") {
            let result = schemas.validate_error(self.mode, message);
            if method.is_none() {
                let mut error = SchemaError::other(
                    format!("error response (id {id})"),
                    "answers an unknown request id",
                    message,
                );
                if let Err(e) = result {
                    error.absorb(e);
                }
                return Err(error);
            }
            return result;
        }
        if !object.contains_key("result") {
            return Err(SchemaError::other(
                format!("server message (id {id})"),
                "has an `id` but neither `result` nor `error`",
                message,
            ));
        }
        match method {
            Some(method) => schemas.validate_response(self.mode, &method, message),
            None => Err(SchemaError::other(
                format!("response (id {id})"),
                "answers an unknown request id (no pending client request has it)",
                message,
            )),
        }
    }

    /// Parses one server→client line and validates it; a line that is not JSON is an error.
    pub fn server_sent_line(&self, line: &str) -> Result<(), SchemaError> {
        match serde_json::from_str::<Value>(line) {
            Ok(message) => self.server_sent(&message),
            Err(e) => Err(SchemaError::other(
                "server line",
                format!("not JSON: {e}"),
                &Value::String(line.to_string()),
            )),
        }
    }

    /// The client requests not answered yet, as `(id, method)` with the id as compact JSON.
    pub fn pending(&self) -> Vec<(String, String)> {
        let mut out: Vec<_> = self
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort();
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;

/// Checks an error answer with a null id: `{"id": null, "error": {code: -32700|-32600, message}}`.
fn null_id_error(message: &Value) -> Result<(), SchemaError> {
    let code = message["error"]["code"].as_i64();
    let text_ok = message["error"]["message"].is_string();
    let keys_ok = message
        .as_object()
        .is_some_and(|o| o.keys().all(|k| k == "id" || k == "error"));
    if matches!(code, Some(-32700) | Some(-32600)) && text_ok && keys_ok {
        Ok(())
    } else {
        Err(SchemaError::other(
            "error response (id null)",
            "a null id is only allowed on a parse (-32700) or invalid request (-32600) error",
            message,
        ))
    }
}
