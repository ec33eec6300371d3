//! Several shards behind one address: each shard is a [`Server`] with its own SO_REUSEPORT
//! listener, loop thread, slab and room members; the kernel spreads connections over them.

use super::{load_tls, Parts, Server, ServerError, ServerHandle};
use crate::cluster::nats::{LogLimits, Nats};
use crate::cluster::{Backplane, InProcess, Remote};
use crate::config::{ServerConfig, MAX_SHARDS};
use crate::net::listen;
use crate::protocol::validate::DEFAULT_ROOM;
use crate::services::Services;
use crate::stats::StatsSnapshot;
use std::net::SocketAddr;
use std::sync::Arc;

/// All shards of one server.
pub struct Shards {
    shards: Vec<Server>,
    addr: SocketAddr,
    handle: ShardsHandle,
    services: Arc<Services>,
}

/// Handle to every shard: stop them all, read their counters.
#[derive(Clone)]
pub struct ShardsHandle {
    shards: Vec<ServerHandle>,
}

impl ShardsHandle {
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

impl Shards {
    /// Binds `config.shard_count()` listeners on `config.bind` with SO_REUSEPORT (the first
    /// picks the port when it is 0) and links the shards through one in-process backplane. The connection
    /// limit is split evenly between shards.
    pub fn bind(mut config: ServerConfig) -> Result<Shards, ServerError> {
        // A cluster node keeps one shard number for the rest of the cluster.
        let n = config.shard_count().clamp(1, MAX_SHARDS - usize::from(config.cluster.is_some()));
        config.max_connections = config.max_connections.div_ceil(n);
        let acceptor = if config.tls.enabled { Some(load_tls(&config)?) } else { None };
        let bind_err = |addr, source| ServerError::Bind { addr, source };
        let first = listen(config.bind, n > 1).map_err(|e| bind_err(config.bind, e))?;
        let addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..n {
            listeners.push(listen(addr, true).map_err(|e| bind_err(addr, e))?);
        }
        let mut parts = Vec::with_capacity(n);
        let mut links = Vec::with_capacity(n);
        for l in listeners {
            let (p, link) = Parts::new(l, acceptor.clone())?;
            parts.push(p);
            links.push(link);
        }
        let local = Arc::new(InProcess::new(links, DEFAULT_ROOM));
        // (The cluster first: in accounts mode its nodes share one book of accounts.)
        let nats = match &config.cluster {
            Some(c) => {
                // `--advertise HOST` means this node's port, known now that it is bound.
                c.advertise.complete_port(addr.port());
                let s = &config.services;
                let limits = LogLimits {
                    replay_len: s.history_len,
                    cache_bytes: s.history_cache,
                    inflight: c.inflight,
                    retention: s.retention,
                };
                Some(Arc::new(Nats::start(c.clone(), limits, local.clone())?))
            }
            None => None,
        };
        let services = Services::start_with(&config, nats.as_ref().map(|n| n.account_book()))?;
        if let Some(nats) = &nats {
            let files = services.files.as_ref();
            nats.serve_files(files.map(|f| f.dir().to_path_buf()), files.map(|f| f.all()).unwrap_or_default());
        }
        let cluster = nats.as_ref().map(|n| n.stats());
        let backplane: Arc<dyn Backplane> = match nats {
            Some(nats) => nats,
            None => local,
        };
        let bp = backplane.clone();
        services.attach(Arc::new(move |shard, done| bp.deliver(shard, vec![Remote::Done(done)])));
        let mut shards: Vec<Server> = parts
            .into_iter()
            .enumerate()
            .map(|(i, p)| p.finish(i, backplane.clone(), services.clone(), config.clone()))
            .collect();
        let handle = ShardsHandle { shards: shards.iter().map(Server::handle).collect() };
        if let Some(maddr) = config.metrics {
            let mut endpoint = crate::metrics::MetricsEndpoint::bind(maddr)
                .map_err(|source| ServerError::Bind { addr: maddr, source })?;
            endpoint.register(shards[0].poll.registry())?;
            tracing::info!("metrics at http://{}/metrics", endpoint.local_addr());
            shards[0].metrics = Some((endpoint, handle.shards.clone()));
            shards[0].cluster = cluster;
        }
        let stats = handle.clone();
        services.set_stats_source(Arc::new(move || stats.stats()));
        Ok(Shards { shards, addr, handle, services })
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The address the shards listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The shared services (passkey, history, accounts, admin console).
    pub fn services(&self) -> Arc<Services> {
        self.services.clone()
    }

    /// A handle to all shards.
    pub fn handle(&self) -> ShardsHandle {
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
