SELECT count(*) FROM check_system_consistency();
