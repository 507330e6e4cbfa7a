-- Reading jobs are updated several times in their short life (the sweep stamps enqueued_at when
-- it rings a job's doorbell; claim and finish change its status and attempt fields). An update
-- that changes no indexed column (the sweep's stamp, the result fields of a finished job) can be
-- a HOT update, which writes no index entry, only when the row's page has room for the new
-- version. With the default fillfactor (100) pages filled by inserts are full, so every such
-- update also inserted into each of the table's indexes; at a million jobs those indexes no
-- longer fit in memory and the sweep grew with the table (docs/performance.md, data_scale).
-- Pages written from now on keep 15% free for updates; existing pages keep their layout until
-- they are rewritten (VACUUM FULL or a repack), which this migration does not force.
alter table public.jobs set (fillfactor = 85);
