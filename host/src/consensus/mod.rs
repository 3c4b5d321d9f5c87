//! Consensus among replicas (issue #9): Verity's types for the Malachite BFT engine, what
//! its validators sign, the codec its messages travel in, a proposed block's parts, their
//! streams and reassembly, the engine's signer and verifier (on the pipeline's verifier), the
//! application that answers the engine ([`app`]), starting the engine ([`node`]), and the
//! offline check of a commit certificate and of a certified block.

pub mod app;
pub mod certificate;
pub mod certified;
pub mod codec;
pub mod context;
pub mod evidence;
pub mod faults;
pub mod keys;
pub mod node;
pub mod parts;
pub mod signing;
pub mod streams;
