//! The StackBilt Architect surface (`/api/...`): so far its keys and auth routes.

pub mod keys;
