"""The Radicale side: storage that turns Visio/Audio events into rooms, auth, launcher."""
