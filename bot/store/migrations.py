"""Numbered schema migrations; index + 1 = PRAGMA user_version. Append only, never edit."""

MIGRATIONS: list[str] = [
    # 1: core schema
    """
    CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL
    );

    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        case_code TEXT NOT NULL UNIQUE,
        priority INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'open',
        location TEXT NOT NULL DEFAULT '',
        people_count INTEGER NOT NULL DEFAULT 1,
        needs TEXT NOT NULL DEFAULT '',
        summary TEXT NOT NULL DEFAULT '',
        reporter TEXT NOT NULL,
        channel TEXT NOT NULL,
        conversation TEXT NOT NULL,
        lang TEXT NOT NULL DEFAULT 'en',
        lat REAL,
        lon REAL,
        owner TEXT,
        last_ack_at REAL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX incidents_reporter ON incidents(channel, reporter, status);

    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY,
        channel TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        peer TEXT NOT NULL,
        conversation TEXT NOT NULL,
        order_key TEXT NOT NULL,
        role TEXT NOT NULL DEFAULT 'public',
        needs_model INTEGER NOT NULL DEFAULT 1,
        text TEXT NOT NULL,
        attachments TEXT NOT NULL DEFAULT '[]',
        meta TEXT NOT NULL DEFAULT '{}',
        lang TEXT NOT NULL DEFAULT 'en',
        priority INTEGER NOT NULL DEFAULT 2,
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        lease_until REAL,
        incident_id INTEGER REFERENCES incidents(id),
        error TEXT,
        received_at REAL NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        done_at REAL,
        UNIQUE(channel, dedup_key)
    );
    CREATE INDEX inbox_claim ON inbox(status, priority, id);
    CREATE INDEX inbox_order ON inbox(order_key, status, id);
    CREATE INDEX inbox_peer ON inbox(channel, peer, received_at);

    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        idem_key TEXT NOT NULL UNIQUE,
        channel TEXT NOT NULL,
        peer TEXT NOT NULL,
        conversation TEXT NOT NULL,
        text TEXT NOT NULL,
        lane INTEGER NOT NULL DEFAULT 1,
        meta TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL DEFAULT 'queued',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        lease_until REAL,
        inbox_id INTEGER REFERENCES inbox(id),
        incident_id INTEGER REFERENCES incidents(id),
        via TEXT,
        ref TEXT,
        error TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        sent_at REAL
    );
    CREATE INDEX outbox_claim ON outbox(status, channel, lane, id);

    CREATE TABLE teams (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        base TEXT NOT NULL DEFAULT '',
        capacity INTEGER NOT NULL DEFAULT 1,
        status TEXT NOT NULL DEFAULT 'available',
        updated_at REAL NOT NULL
    );

    CREATE TABLE dispatches (
        id INTEGER PRIMARY KEY,
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        team_id TEXT REFERENCES teams(id),
        kind TEXT NOT NULL DEFAULT 'boat',
        status TEXT NOT NULL,
        priority INTEGER NOT NULL,
        location TEXT NOT NULL DEFAULT '',
        people_count INTEGER NOT NULL DEFAULT 1,
        needs TEXT NOT NULL DEFAULT '',
        idem_key TEXT NOT NULL UNIQUE,
        requested_by TEXT NOT NULL,
        decided_by TEXT,
        reason TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX dispatches_incident ON dispatches(incident_id, status);

    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        incident_id INTEGER,
        detail TEXT NOT NULL DEFAULT '{}'
    );

    CREATE TABLE model_turns (
        id INTEGER PRIMARY KEY,
        inbox_id INTEGER,
        at REAL NOT NULL,
        ok INTEGER NOT NULL,
        seconds REAL NOT NULL,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        error TEXT
    );
    """,
    # 2: subscriptions, opt-outs, broadcasts (issue 6)
    """
    CREATE TABLE subscriptions (
        channel TEXT NOT NULL,
        peer TEXT NOT NULL,
        area TEXT NOT NULL,
        lang TEXT NOT NULL DEFAULT 'en',
        created_at REAL NOT NULL,
        PRIMARY KEY (channel, peer, area)
    );
    CREATE INDEX subscriptions_area ON subscriptions(area);

    CREATE TABLE optouts (
        channel TEXT NOT NULL,
        peer TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (channel, peer)
    );

    CREATE TABLE broadcasts (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        area TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL DEFAULT '',
        every_min INTEGER,
        run_at REAL,
        status TEXT NOT NULL DEFAULT 'active',
        created_by TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );

    CREATE TABLE broadcast_fires (
        broadcast_id INTEGER NOT NULL REFERENCES broadcasts(id),
        fire_key TEXT NOT NULL,
        at REAL NOT NULL,
        recipients INTEGER NOT NULL,
        PRIMARY KEY (broadcast_id, fire_key)
    );
    """,
    # 3: broadcast fires resumable after a crash (issue 6): a fire is 'running' until every chunk
    # of its recipients is enqueued, then 'done'; `at` is the scheduled slot time of the fire.
    """
    ALTER TABLE broadcast_fires ADD COLUMN status TEXT NOT NULL DEFAULT 'done';
    ALTER TABLE broadcast_fires ADD COLUMN done_at REAL;
    CREATE INDEX broadcast_fires_status ON broadcast_fires(status);
    CREATE INDEX broadcasts_status ON broadcasts(status, kind);
    """,
    # 4: where to deliver an advisory to a subscriber: the Matrix room a user joined from (SMS:
    # the number itself; '' on rows from before this migration means "same as peer").
    """
    ALTER TABLE subscriptions ADD COLUMN conversation TEXT NOT NULL DEFAULT '';
    """,
    # 5: outbox per recipient (issue 10): a recipient's pending rows and last send are found by
    # index, so the claim can keep each recipient's order and round-robin across recipients.
    """
    CREATE INDEX outbox_peer ON outbox(channel, peer, status, sent_at);
    """,
    # 6: routing decided once at intake (issue 11): the route table's decision and the message's
    # typed facts (bot.models.Facts) as columns. Older rows get their facts from `meta`; their
    # decision stays NULL and the same table decides them when a worker first takes them.
    """
    ALTER TABLE inbox ADD COLUMN route TEXT;
    ALTER TABLE inbox ADD COLUMN rule TEXT;
    ALTER TABLE inbox ADD COLUMN handler TEXT;
    ALTER TABLE inbox ADD COLUMN keyword TEXT;
    ALTER TABLE inbox ADD COLUMN command TEXT;
    ALTER TABLE inbox ADD COLUMN command_args TEXT;
    ALTER TABLE inbox ADD COLUMN command_rest TEXT;
    ALTER TABLE inbox ADD COLUMN modem TEXT;
    ALTER TABLE inbox ADD COLUMN binary INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN empty INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN partial INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN undecryptable INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN is_direct INTEGER;
    ALTER TABLE inbox ADD COLUMN addressed INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN edit_of TEXT;
    ALTER TABLE inbox ADD COLUMN in_reply_to TEXT;
    ALTER TABLE inbox ADD COLUMN msgtype TEXT NOT NULL DEFAULT '';
    ALTER TABLE inbox ADD COLUMN voice INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE inbox ADD COLUMN media_error TEXT;
    ALTER TABLE inbox ADD COLUMN lat REAL;
    ALTER TABLE inbox ADD COLUMN lon REAL;
    UPDATE inbox SET
        modem = NULLIF(CAST(json_extract(meta, '$.modem') AS TEXT), ''),
        binary = COALESCE(json_extract(meta, '$.binary'), 0) <> 0,
        empty = COALESCE(json_extract(meta, '$.empty'), 0) <> 0,
        partial = COALESCE(json_extract(meta, '$.partial'), 0) <> 0,
        undecryptable = COALESCE(json_extract(meta, '$.undecryptable'), 0) <> 0,
        is_direct = json_extract(meta, '$.is_direct') <> 0,
        addressed = COALESCE(json_extract(meta, '$.addressed'), 0) <> 0,
        edit_of = NULLIF(CAST(json_extract(meta, '$.edit_of') AS TEXT), ''),
        in_reply_to = NULLIF(CAST(json_extract(meta, '$.in_reply_to') AS TEXT), ''),
        msgtype = COALESCE(CAST(json_extract(meta, '$.msgtype') AS TEXT), ''),
        voice = COALESCE(json_extract(meta, '$.voice'), 0) <> 0,
        media_error = NULLIF(CAST(json_extract(meta, '$.media_error') AS TEXT), ''),
        lat = CASE WHEN json_type(meta, '$.lat') IN ('real', 'integer')
                    AND json_type(meta, '$.lon') IN ('real', 'integer')
                   THEN json_extract(meta, '$.lat') END,
        lon = CASE WHEN json_type(meta, '$.lat') IN ('real', 'integer')
                    AND json_type(meta, '$.lon') IN ('real', 'integer')
                   THEN json_extract(meta, '$.lon') END
    WHERE meta <> '{}';
    """,
    # 7: the incident board (issue 14): a case's messages, notices and audit entries found by
    # index (the case page, the live list's last contact); a model turn's passages, tool calls
    # and the backend's decisions (JSON) for the case page's audit trail.
    """
    CREATE INDEX inbox_incident ON inbox(incident_id, received_at);
    CREATE INDEX outbox_incident ON outbox(incident_id);
    CREATE INDEX audit_incident ON audit(incident_id, at);
    ALTER TABLE model_turns ADD COLUMN detail TEXT;
    """,
    # 8: regional log (issue 15, bot/region): each publishable change gets the next per-district
    # seq. Triggers mark a changed case or the team list in region_dirty in the SAME transaction as
    # the change, but only while the gateway publishes (kv 'region.room' is set); the publisher
    # turns marks into numbered region_log entries (diffed against region_published, so one change
    # is one event) and hands them to the Matrix outbox in seq order (idem_key = the txn id).
    """
    CREATE TABLE region_log (
        district TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        at REAL NOT NULL,
        data TEXT NOT NULL,
        subject TEXT NOT NULL DEFAULT '',
        enqueued_at REAL,
        PRIMARY KEY (district, seq)
    );
    CREATE INDEX region_log_unsent ON region_log(district, seq) WHERE enqueued_at IS NULL;

    CREATE TABLE region_dirty (
        subject TEXT PRIMARY KEY,
        at REAL NOT NULL
    );

    CREATE TABLE region_published (
        subject TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        updated_at REAL NOT NULL
    );

    CREATE TRIGGER region_case_new AFTER INSERT ON incidents
    WHEN EXISTS (SELECT 1 FROM kv WHERE key = 'region.room')
    BEGIN
        INSERT OR IGNORE INTO region_dirty (subject, at) VALUES ('case:' || NEW.id, NEW.updated_at);
    END;
    CREATE TRIGGER region_case_changed AFTER UPDATE OF status, priority ON incidents
    WHEN (OLD.status IS NOT NEW.status OR OLD.priority IS NOT NEW.priority)
        AND EXISTS (SELECT 1 FROM kv WHERE key = 'region.room')
    BEGIN
        INSERT OR IGNORE INTO region_dirty (subject, at) VALUES ('case:' || NEW.id, NEW.updated_at);
    END;
    CREATE TRIGGER region_dispatch_new AFTER INSERT ON dispatches
    WHEN EXISTS (SELECT 1 FROM kv WHERE key = 'region.room')
    BEGIN
        INSERT OR IGNORE INTO region_dirty (subject, at)
        VALUES ('case:' || NEW.incident_id, NEW.updated_at);
    END;
    CREATE TRIGGER region_dispatch_changed AFTER UPDATE OF status, team_id ON dispatches
    WHEN (OLD.status IS NOT NEW.status OR OLD.team_id IS NOT NEW.team_id)
        AND EXISTS (SELECT 1 FROM kv WHERE key = 'region.room')
    BEGIN
        INSERT OR IGNORE INTO region_dirty (subject, at)
        VALUES ('case:' || NEW.incident_id, NEW.updated_at);
    END;
    CREATE TRIGGER region_team_new AFTER INSERT ON teams
    WHEN EXISTS (SELECT 1 FROM kv WHERE key = 'region.room')
    BEGIN
        INSERT OR IGNORE INTO region_dirty (subject, at) VALUES ('teams', NEW.updated_at);
    END;
    CREATE TRIGGER region_team_changed AFTER UPDATE OF status ON teams
    WHEN OLD.status IS NOT NEW.status AND EXISTS (SELECT 1 FROM kv WHERE key = 'region.room')
    BEGIN
        INSERT OR IGNORE INTO region_dirty (subject, at) VALUES ('teams', NEW.updated_at);
    END;
    """,
    # 9: (regionview, issue 15) the read-only regional view, rebuilt from the regional room's
    # history (bot/store/region_view.py), with the lend state read from the lenders' events.
    # Applied by (district, seq): every event once, in any order.
    """
    CREATE TABLE region_events (
        district TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        at REAL NOT NULL,
        seen_at REAL NOT NULL,
        event_id TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (district, seq)
    );
    CREATE TABLE region_districts (
        district TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL DEFAULT 0,
        events INTEGER NOT NULL DEFAULT 0,
        last_heard_at REAL NOT NULL DEFAULT 0,
        teams_seq INTEGER NOT NULL DEFAULT 0,
        sitrep_seq INTEGER NOT NULL DEFAULT 0,
        sitrep TEXT NOT NULL DEFAULT '{}'
    );
    CREATE TABLE region_cases (
        district TEXT NOT NULL,
        code TEXT NOT NULL,
        info_seq INTEGER NOT NULL DEFAULT 0,
        state_seq INTEGER NOT NULL DEFAULT 0,
        priority TEXT NOT NULL DEFAULT 'high',
        status TEXT NOT NULL DEFAULT 'open',
        team TEXT NOT NULL DEFAULT '',
        area TEXT NOT NULL DEFAULT '',
        people INTEGER NOT NULL DEFAULT 0,
        needs TEXT NOT NULL DEFAULT '',
        summary TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (district, code)
    );
    CREATE TABLE region_teams (
        district TEXT NOT NULL,
        team TEXT NOT NULL,
        kind TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT '',
        lender TEXT NOT NULL DEFAULT '',
        borrower TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (district, team)
    );
    CREATE TABLE region_needs (
        district TEXT NOT NULL,
        to_district TEXT NOT NULL,
        kind TEXT NOT NULL,
        seq INTEGER NOT NULL,
        count INTEGER NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL,
        PRIMARY KEY (district, to_district, kind)
    );
    CREATE TABLE region_lends (
        lender TEXT NOT NULL,
        team TEXT NOT NULL,
        borrower TEXT NOT NULL,
        seq INTEGER NOT NULL,
        active INTEGER NOT NULL,
        until REAL,
        at REAL NOT NULL,
        PRIMARY KEY (lender, team)
    );
    """,
    # 10: the board's case list walks open cases in `!incidents` order and stops at its limit
    # (bot/store/board.py cases) instead of sorting every case for each page load.
    """
    CREATE INDEX incidents_board_order ON incidents(priority, created_at);
    """,
]
