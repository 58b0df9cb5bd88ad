// The alarm panel (renders into <section id="alarms-panel">) is maintained separately; this placeholder draws nothing.
