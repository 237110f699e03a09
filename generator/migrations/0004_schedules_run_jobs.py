"""The schedules' functions moved to generator.jobs (every django-q2 entry point lives there).

Installed schedules store the dotted path they run: point them at the new one. `migrate`
installs the schedules afterwards too (post_migrate), so this only matters for a worker that
runs between this migration and that step, and for a rollback.
"""

from django.db import migrations

MOVED = {
    "generator.recovery.run_scheduled_recovery": "generator.jobs.recover_tasks",
    "generator.maintenance.run_retention_cleanup": "generator.jobs.retention_cleanup",
}


def point_at_jobs(apps, schema_editor, moves=MOVED):
    Schedule = apps.get_model("django_q", "Schedule")
    for old, new in moves.items():
        Schedule.objects.using(schema_editor.connection.alias).filter(func=old).update(func=new)


def point_back(apps, schema_editor):
    point_at_jobs(apps, schema_editor, {new: old for old, new in MOVED.items()})


class Migration(migrations.Migration):
    dependencies = [
        ("generator", "0003_verbose_names"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(point_at_jobs, point_back)]
