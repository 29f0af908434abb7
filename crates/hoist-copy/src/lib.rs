//! Executes a plan over any Source/Sink: dedup by digest, bounded concurrency, commit order.
