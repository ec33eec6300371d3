//! The cluster link's figures on the metrics endpoint (a cluster node only).

use super::{family, sample};

/// A cluster node's link to NATS (see docs/CLUSTER.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterFigures {
    /// Whether the NATS connection is up now.
    pub connected: bool,
    /// Times the NATS connection was lost.
    pub disconnects: u64,
    /// Batches of cross-node work dropped because the queue to the NATS thread was full.
    pub dropped: u64,
    /// Envelopes published to other nodes.
    pub published: u64,
    /// Envelopes received from other nodes.
    pub received: u64,
    /// Local users' name claims that could not be renewed.
    pub names_lost: u64,
    /// Room messages the cluster's log confirmed.
    pub logged: u64,
    /// Room messages refused because the log could not take them.
    pub log_refused: u64,
    /// Gaps in a room's live messages filled from the log.
    pub log_gaps: u64,
    /// Chunks of other nodes' files fetched for local downloads.
    pub file_chunks_fetched: u64,
    /// Chunk requests to other nodes that failed (each ended its download with an error).
    pub file_fetches_failed: u64,
    /// Chunks of this node's files read for other nodes' downloads.
    pub file_chunks_served: u64,
}

/// Appends the cluster link's figures.
pub(super) fn render(out: &mut String, c: &ClusterFigures) {
    let figures: [(&str, &str, &str, u64); 12] = [
        ("chatproto_cluster_connected", "gauge", "1 while the NATS connection is up.", u64::from(c.connected)),
        ("chatproto_cluster_disconnects_total", "counter", "Times the NATS connection was lost.", c.disconnects),
        (
            "chatproto_cluster_dropped_total",
            "counter",
            "Batches of cross-node work dropped: the queue to the NATS thread was full.",
            c.dropped,
        ),
        ("chatproto_cluster_published_total", "counter", "Envelopes published to other nodes.", c.published),
        ("chatproto_cluster_received_total", "counter", "Envelopes received from other nodes.", c.received),
        (
            "chatproto_cluster_names_lost_total",
            "counter",
            "Local users' name claims that could not be renewed.",
            c.names_lost,
        ),
        ("chatproto_cluster_logged_total", "counter", "Room messages the cluster's log confirmed.", c.logged),
        (
            "chatproto_cluster_log_refused_total",
            "counter",
            "Room messages refused (the sender got an error): the log could not take them.",
            c.log_refused,
        ),
        (
            "chatproto_cluster_log_gaps_total",
            "counter",
            "Gaps in a room's live messages from NATS, filled by reading the log.",
            c.log_gaps,
        ),
        (
            "chatproto_cluster_file_chunks_fetched_total",
            "counter",
            "Chunks of files stored on other nodes fetched for downloads here.",
            c.file_chunks_fetched,
        ),
        (
            "chatproto_cluster_file_fetches_failed_total",
            "counter",
            "Chunk requests to other nodes that failed (the download got an error).",
            c.file_fetches_failed,
        ),
        (
            "chatproto_cluster_file_chunks_served_total",
            "counter",
            "Chunks of this node's files read for downloads on other nodes.",
            c.file_chunks_served,
        ),
    ];
    for (name, kind, help, value) in figures {
        family(out, name, kind, help);
        sample(out, name, "", &value.to_string());
    }
}
