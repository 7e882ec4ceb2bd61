-- SPDX-License-Identifier: Apache-2.0
-- security-revoke.sql - take EXECUTE on risky functions away from PUBLIC in the OMOP
-- database, as defence in depth behind flip-node's SQL guard (docs/security.md).
--
-- Run it as the database owner or a superuser, connected to the OMOP database:
--
--     psql -d <omop database> -v ON_ERROR_STOP=1 -f security-revoke.sql
--
-- What it does: for every function of these names in pg_catalog (every overload),
-- and every dblink* function in any schema, REVOKE EXECUTE ... FROM PUBLIC. Function
-- privileges live in each database's own catalog, so other databases of the cluster
-- are not touched. Superusers keep everything. A role of yours that needs one of
-- these in the OMOP database (an ETL job calling current_setting, say) gets it back
-- with GRANT EXECUTE ON FUNCTION ... TO that role; never grant them to the node's
-- login role (DATA_ACCESS_POSTGRES_USER) or its base role.
--
-- Check the result with `flipctl doctor`: the omop-functions line then says that none
-- of the risky functions is executable. Keep the list in step with RISKY_FUNCTIONS in
-- bin/flipctl/doctor.c.
DO $revoke$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure FROM pg_proc p
        JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE (n.nspname = 'pg_catalog' AND p.proname = ANY (ARRAY[
                'pg_read_file', 'pg_read_binary_file', 'pg_ls_dir', 'pg_stat_file',
                'pg_ls_logdir', 'pg_ls_waldir', 'lo_import', 'lo_export', 'lo_get',
                'lo_open', 'lo_from_bytea', 'query_to_xml', 'query_to_xml_and_xmlschema',
                'query_to_xmlschema', 'table_to_xml', 'cursor_to_xml', 'schema_to_xml',
                'database_to_xml', 'xpath', 'ts_stat', 'ts_rewrite', 'current_setting',
                'set_config', 'pg_sleep', 'pg_sleep_for', 'pg_sleep_until',
                'pg_terminate_backend', 'pg_cancel_backend', 'pg_advisory_lock',
                'pg_advisory_xact_lock', 'pg_notify', 'version', 'inet_server_addr',
                'inet_client_addr', 'pg_backend_pid', 'txid_current',
                'pg_current_xact_id']))
           OR p.proname LIKE 'dblink%'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    END LOOP;
END
$revoke$;
