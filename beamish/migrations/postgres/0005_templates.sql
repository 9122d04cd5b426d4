-- Versioned prompt templates (beamish.templates). A template is a name with a counter of the
-- versions it has handed out; versions are immutable rows numbered 1, 2, ... from that
-- counter (so a number is never handed out twice); labels point at one version each, and
-- moving one is a single upsert. The global config of a task type (and tier) may name the
-- template and label that task uses.
CREATE TABLE prompt_templates (
    name         text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
    last_version integer NOT NULL CHECK (last_version >= 1),
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE TABLE prompt_template_versions (
    name             text NOT NULL REFERENCES prompt_templates (name) ON DELETE CASCADE,
    version          integer NOT NULL CHECK (version >= 1),
    prompt           text NOT NULL,
    system           text,
    task_type        text NOT NULL CHECK (length(task_type) > 0),
    output_format    text CHECK (output_format IN ('text', 'json', 'markdown', 'html')),
    variables_schema jsonb,
    created_at       timestamptz NOT NULL,
    created_by       text NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE prompt_template_labels (
    name       text NOT NULL,
    label      text NOT NULL CHECK (length(label) BETWEEN 1 AND 128),
    version    integer NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (name, label),
    FOREIGN KEY (name, version) REFERENCES prompt_template_versions (name, version)
        ON DELETE CASCADE
);

ALTER TABLE global_configs ADD COLUMN template text;
ALTER TABLE global_configs ADD COLUMN template_label text;
