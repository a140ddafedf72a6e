//! Routes that need no key: public pages and feeds of a project.

pub mod changelog;
pub mod feedback;
pub mod team;
