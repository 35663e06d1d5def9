//! Recovery runbooks (`planrun recover --level N`): the incident record ([`incident`]), the
//! set each restore reads ([`set_choice`]), the questions asked of the person on call
//! ([`prompt`]) and the runner that takes the steps one by one ([`runner`]) through the
//! executor used by `execute`, without its graph.

pub mod incident;
pub mod prompt;
pub mod runner;
pub mod set_choice;
