-- Informational: the same as evse_bump.sql, plus rewriting the location's cached JSON document (as the platform
-- does on every change; the text is rewritten unchanged here, which costs the same TOAST/compression work).
\set p random(1, :plocs)
WITH loc AS (
    SELECT id FROM locations_location
    WHERE lower(country_code) = 'de' AND lower(party_id) = 'bpc' AND lower(ocpi_id) = lower('PLOC' || lpad(:p::text, 6, '0'))
), evse AS (
    UPDATE locations_evse
    SET status = CASE WHEN status = 'AVAILABLE' THEN 'CHARGING' ELSE 'AVAILABLE' END, last_updated = now()
    WHERE location_id = (SELECT id FROM loc) AND lower(uid) = lower('PLOC' || lpad(:p::text, 6, '0') || '-1')
    RETURNING location_id
)
UPDATE locations_location SET last_updated = now(), doc = doc || '' WHERE id IN (SELECT location_id FROM evse);
