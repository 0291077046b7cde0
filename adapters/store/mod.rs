//! `OtpStore` adapters: Redis for production, memory for one process.

mod memory;
mod redis;

pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
