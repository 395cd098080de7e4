//! Each core error's kind and hints ([`Kinded`] impls, in `kinds.rs`),
//! over the plain data of [`crate::model::error`], which is named here
//! too. Nothing in tandem-core imports this module: the impls reach
//! every caller of [`Failure::of`] by the trait alone, so the error types
//! of every part can be named here without an import circle.

pub use crate::model::error::*;

mod kinds;
