//! The parts of the `tandem` binary that need no terminal or supervisor
//! and are shared with `tandem-bench`: the agent view's state and drawing.

pub mod view {
    //! The agent view's state and keys ([`model`]) and its drawing
    //! ([`render`]); `tandem view` runs them.

    pub mod model;
    pub mod render;
    pub mod selected;
}
