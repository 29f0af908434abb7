//! Dev-only test kit: real servers on 127.0.0.1, random images, a validator, a fault proxy.
