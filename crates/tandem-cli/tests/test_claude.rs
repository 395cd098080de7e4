//! End to end with the real Claude Code CLI against a scripted stand-in
//! for the Anthropic Messages API on 127.0.0.1.
