//! The Verity card without hardware.
//!
//! A functional model (the firmware's reference interpreter behind the card's record and
//! register semantics), a cycle model (the `hdl` design, simulated), and a virtual XDMA
//! endpoint that serves either through the same files the real driver opens. They arrive with
//! issues #6 and #7; the behaviour they model is defined in [`verity_firmware`].
