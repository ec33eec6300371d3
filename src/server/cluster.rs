//! Several shards behind one address: each shard is a [`Server`] with its own SO_REUSEPORT
//! listener, loop thread, slab and room members; the kernel spreads connections over them.

use super::{Server, ServerError, ServerHandle};
use crate::config::ServerConfig;
use crate::stats::StatsSnapshot;
use std::net::SocketAddr;

/// All shards of one server.
pub struct Cluster {
    shards: Vec<Server>,
    addr: SocketAddr,
    handle: ClusterHandle,
}

/// Handle to every shard: stop them all, read their counters.
#[derive(Clone)]
pub struct ClusterHandle {
    shards: Vec<ServerHandle>,
}

impl ClusterHandle {
    /// Asks every shard to shut down gracefully.
    pub fn shutdown(&self) {
        self.shards.iter().for_each(ServerHandle::shutdown);
    }

    /// Counters summed over shards.
    pub fn stats(&self) -> StatsSnapshot {
        let mut total = StatsSnapshot::default();
        self.shards.iter().for_each(|s| total.add(&s.stats()));
        total
    }

    /// Each shard's counters.
    pub fn shard_stats(&self) -> Vec<StatsSnapshot> {
        self.shards.iter().map(ServerHandle::stats).collect()
    }
}

impl Cluster {
    /// Binds every shard's listener on `config.bind`.
    pub fn bind(config: ServerConfig) -> Result<Cluster, ServerError> {
        // Rooms do not span shards yet: run one shard until they do.
        let server = Server::bind(config)?;
        let addr = server.local_addr();
        let handle = ClusterHandle { shards: vec![server.handle()] };
        Ok(Cluster { shards: vec![server], addr, handle })
    }

    /// The address the shards listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to all shards.
    pub fn handle(&self) -> ClusterHandle {
        self.handle.clone()
    }

    /// Runs every shard (shard 0 on this thread) until shutdown.
    pub fn run(mut self) -> Result<(), ServerError> {
        let first = self.shards.remove(0);
        let others: Vec<_> = self
            .shards
            .into_iter()
            .enumerate()
            .map(|(i, s)| std::thread::Builder::new().name(format!("chat-shard-{}", i + 1)).spawn(move || s.run()))
            .collect::<Result<_, _>>()?;
        let result = first.run();
        for t in others {
            t.join().map_err(|_| ServerError::Panicked)??;
        }
        result
    }
}
