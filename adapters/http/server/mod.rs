//! What carries requests to the handlers: the route table and dispatch,
//! the layer every request passes through, the body limit, and the idle
//! connection watcher.

pub mod body_limit;
pub mod dispatch;
pub mod each_request;
pub mod idle;
pub mod route_table;
