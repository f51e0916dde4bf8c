"""Traffic signals: intersection and plan model, the French rules, time-of-day tables, and the controller driver."""
