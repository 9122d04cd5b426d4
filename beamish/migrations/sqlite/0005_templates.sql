-- Versioned prompt templates (beamish.templates). A template is a name with a counter of the
-- versions it has handed out; versions are immutable rows numbered 1, 2, ... from that
-- counter (so a number is never handed out twice); labels point at one version each, and
-- moving one is a single upsert. The global config of a task type (and tier) may name the
-- template and label that task uses.
CREATE TABLE prompt_templates (
    name         TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
    last_version INTEGER NOT NULL CHECK (last_version >= 1),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE prompt_template_versions (
    name             TEXT NOT NULL REFERENCES prompt_templates (name) ON DELETE CASCADE,
    version          INTEGER NOT NULL CHECK (version >= 1),
    prompt           TEXT NOT NULL,
    system           TEXT,
    task_type        TEXT NOT NULL CHECK (length(task_type) > 0),
    output_format    TEXT CHECK (output_format IN ('text', 'json', 'markdown', 'html')),
    variables_schema TEXT CHECK (variables_schema IS NULL OR json_valid(variables_schema)),
    created_at       TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE prompt_template_labels (
    name       TEXT NOT NULL,
    label      TEXT NOT NULL CHECK (length(label) BETWEEN 1 AND 128),
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (name, label),
    FOREIGN KEY (name, version) REFERENCES prompt_template_versions (name, version)
        ON DELETE CASCADE
);

ALTER TABLE global_configs ADD COLUMN template TEXT;
ALTER TABLE global_configs ADD COLUMN template_label TEXT;
