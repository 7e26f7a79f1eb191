-- 0006: error texts stored before errors were scrubbed may hold a
-- connection string with its password: a source URL that did not parse was
-- quoted whole in runs.error (and so in status). SQL cannot know the
-- secrets, so this hides what has the shape of one, with the patterns of
-- internal/redact's Credentials:
--   scheme://user:PASSWORD@   becomes  scheme://user:***@
--   password=VALUE            becomes  password=***
-- It cannot clean a secret in any other shape: an İYS password or a token
-- quoted alone, a piece of a password that a parser quoted on its own (the
-- "%zz" of 'invalid URL escape "%zz"'), a password with a "/" or a '"' in a
-- malformed URL; nor the copies outside this database (old logs, backups).
UPDATE runs
SET error = regexp_replace(regexp_replace(error,
        '([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@[:space:]"''\\]*:)[^@\n"/]{1,255}@', '\1***@', 'g'),
        '(password[[:space:]]*=[[:space:]]*)(''([^''\\]|\\.|'''')*''|[^[:space:]''"&]+)', '\1***', 'g')
WHERE error LIKE '%://%@%' OR error ILIKE '%password%=%';

UPDATE consents
SET iys_message = regexp_replace(regexp_replace(iys_message,
        '([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@[:space:]"''\\]*:)[^@\n"/]{1,255}@', '\1***@', 'g'),
        '(password[[:space:]]*=[[:space:]]*)(''([^''\\]|\\.|'''')*''|[^[:space:]''"&]+)', '\1***', 'g')
WHERE iys_message LIKE '%://%@%' OR iys_message ILIKE '%password%=%';
