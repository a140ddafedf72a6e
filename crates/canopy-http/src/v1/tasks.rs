//! Minolith tasks and teams (routes fixed in surface-v1-work.md). Accepting an invitation is
//! keyless (the token is the credential): see [`crate::public::team`].

use axum::http::{Method, StatusCode};
use canopy_services::work::bootstrap::GetBootstrap;
use canopy_services::work::notes::{AddTaskNote, AssignTask, GetTeamFeed, UpdateTaskStatus};
use canopy_services::work::tasks::{
    CreateTask, DeleteTask, GetMyTasks, GetTask, ListTasks, UpdateTask,
};
use canopy_services::work::teams::{
    AddMember, CreateInvite, ListMembers, RemoveMember, UpdateMember,
};
use canopy_services::work::workflow::{GetWorkflow, PutWorkflow};

use crate::api::Api;

pub fn routes() -> Api {
    Api::new("tasks")
        .merge(Api::new("bootstrap").op::<GetBootstrap>(
            Method::GET,
            "/v1/bootstrap",
            StatusCode::OK,
        ))
        .op::<CreateTask>(Method::POST, "/v1/tasks", StatusCode::CREATED)
        .op::<ListTasks>(Method::GET, "/v1/tasks", StatusCode::OK)
        .op::<GetMyTasks>(Method::GET, "/v1/tasks/mine", StatusCode::OK)
        .op::<GetTeamFeed>(Method::GET, "/v1/tasks/feed", StatusCode::OK)
        .op::<GetWorkflow>(Method::GET, "/v1/tasks/workflow", StatusCode::OK)
        .op::<PutWorkflow>(Method::PUT, "/v1/tasks/workflow", StatusCode::OK)
        .op::<GetTask>(Method::GET, "/v1/tasks/{id}", StatusCode::OK)
        .op::<UpdateTask>(Method::PATCH, "/v1/tasks/{id}", StatusCode::OK)
        .op::<DeleteTask>(Method::DELETE, "/v1/tasks/{id}", StatusCode::OK)
        .op::<UpdateTaskStatus>(Method::POST, "/v1/tasks/{id}/status", StatusCode::OK)
        .op::<AssignTask>(Method::POST, "/v1/tasks/{id}/assign", StatusCode::OK)
        .op::<AddTaskNote>(Method::POST, "/v1/tasks/{id}/notes", StatusCode::CREATED)
        .merge(
            Api::new("team")
                .op::<AddMember>(Method::POST, "/v1/team/members", StatusCode::CREATED)
                .op::<ListMembers>(Method::GET, "/v1/team/members", StatusCode::OK)
                .op::<UpdateMember>(Method::PATCH, "/v1/team/members/{id}", StatusCode::OK)
                .op::<RemoveMember>(Method::DELETE, "/v1/team/members/{id}", StatusCode::OK)
                .op::<CreateInvite>(Method::POST, "/v1/team/invites", StatusCode::CREATED),
        )
}
