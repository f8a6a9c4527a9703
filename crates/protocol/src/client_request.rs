//! Client-to-server requests and their typed successful responses.

use crate::jsonrpc::RequestId;
use crate::method_table::client_method_table;
use crate::types::*;

client_method_table! {
    Initialize => "initialize", InitializeParams, InitializeResponse;
    ThreadStart => "thread/start", ThreadStartParams, ThreadStartResponse;
    ThreadResume => "thread/resume", ThreadResumeParams, ThreadResumeResponse;
    ThreadFork => "thread/fork", ThreadForkParams, ThreadForkResponse;
    ThreadList => "thread/list", ThreadListParams, ThreadListResponse;
    ThreadRead => "thread/read", ThreadReadParams, ThreadResponse;
    ThreadLoadedList => "thread/loaded/list", ThreadLoadedListParams, ThreadLoadedListResponse;
    ThreadTurnsList => "thread/turns/list", ThreadTurnsListParams, ThreadTurnsListResponse;
    ThreadItemsList => "thread/items/list", ThreadItemsListParams, ThreadItemsListResponse;
    ThreadArchive => "thread/archive", ThreadIdParams, EmptyResponse;
    ThreadUnarchive => "thread/unarchive", ThreadIdParams, ThreadResponse;
    ThreadUnsubscribe => "thread/unsubscribe", ThreadIdParams, ThreadUnsubscribeResponse;
    ThreadCompactStart => "thread/compact/start", ThreadIdParams, EmptyResponse;
    ThreadGoalSet => "thread/goal/set", ThreadGoalSetParams, ThreadGoalSetResponse;
    ThreadGoalGet => "thread/goal/get", ThreadIdParams, ThreadGoalGetResponse;
    ThreadGoalClear => "thread/goal/clear", ThreadGoalClearParams, ThreadGoalClearResponse;
    ThreadNameSet => "thread/name/set", ThreadSetNameParams, EmptyResponse;
    ThreadShellCommand => "thread/shellCommand", ThreadShellCommandParams, EmptyResponse;
    TurnStart => "turn/start", TurnStartParams, TurnStartResponse;
    TurnSteer => "turn/steer", TurnSteerParams, TurnSteerResponse;
    TurnInterrupt => "turn/interrupt", TurnInterruptParams, EmptyResponse;
    ReviewStart => "review/start", ReviewStartParams, ReviewStartResponse;
    ModelList => "model/list", ModelListParams, ModelListResponse;
    ConfigRead => "config/read", ConfigReadParams, ConfigReadResponse;
    ConfigRequirementsRead => "configRequirements/read", NoParams, ConfigRequirementsReadResponse;
    ConfigBatchWrite => "config/batchWrite", ConfigBatchWriteParams, ConfigWriteResponse;
    HooksList => "hooks/list", HooksListParams, HooksListResponse;
    AccountRead => "account/read", GetAccountParams, GetAccountResponse;
    AccountLoginStart => "account/login/start", LoginAccountParams, LoginAccountResponse;
    AccountLogout => "account/logout", NoParams, EmptyResponse;
    SkillsList => "skills/list", SkillsListParams, SkillsListResponse;
    PluginInstalled => "plugin/installed", PluginInstalledParams, PluginInstalledResponse;
    McpServerStatusList => "mcpServerStatus/list", ListMcpServerStatusParams, ListMcpServerStatusResponse;
}

impl ClientRequest {
    /// The thread a request names, used to serialize requests per thread.
    pub fn thread_id(&self) -> Option<&str> {
        match self {
            ClientRequest::ThreadResume(p) => Some(&p.thread_id),
            ClientRequest::ThreadFork(p) => Some(&p.thread_id),
            ClientRequest::ThreadRead(p) => Some(&p.thread_id),
            ClientRequest::ThreadTurnsList(p) => Some(&p.thread_id),
            ClientRequest::ThreadItemsList(p) => Some(&p.thread_id),
            ClientRequest::ThreadArchive(p)
            | ClientRequest::ThreadUnarchive(p)
            | ClientRequest::ThreadUnsubscribe(p)
            | ClientRequest::ThreadCompactStart(p)
            | ClientRequest::ThreadGoalGet(p) => Some(&p.thread_id),
            ClientRequest::ThreadGoalSet(p) => Some(&p.thread_id),
            ClientRequest::ThreadGoalClear(p) => Some(&p.thread_id),
            ClientRequest::ThreadNameSet(p) => Some(&p.thread_id),
            ClientRequest::ThreadShellCommand(p) => Some(&p.thread_id),
            ClientRequest::TurnStart(p) => Some(&p.thread_id),
            ClientRequest::TurnSteer(p) => Some(&p.thread_id),
            ClientRequest::TurnInterrupt(p) => Some(&p.thread_id),
            ClientRequest::ReviewStart(p) => Some(&p.thread_id),
            ClientRequest::Initialize(_)
            | ClientRequest::ThreadStart(_)
            | ClientRequest::ThreadList(_)
            | ClientRequest::ThreadLoadedList(_)
            | ClientRequest::ModelList(_)
            | ClientRequest::ConfigRead(_)
            | ClientRequest::ConfigRequirementsRead(_)
            | ClientRequest::ConfigBatchWrite(_)
            | ClientRequest::HooksList(_)
            | ClientRequest::AccountRead(_)
            | ClientRequest::AccountLoginStart(_)
            | ClientRequest::AccountLogout(_)
            | ClientRequest::SkillsList(_)
            | ClientRequest::PluginInstalled(_)
            | ClientRequest::McpServerStatusList(_) => None,
        }
    }
}

/// A successful response with the id of the request it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientResponse {
    pub request_id: RequestId,
    pub payload: ClientResponsePayload,
}

#[cfg(test)]
#[path = "client_request_tests.rs"]
mod tests;
