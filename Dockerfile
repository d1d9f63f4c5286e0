# The Airflow image of the production-like stack (docker-compose.yml, x-airflow-common): every
# Airflow component runs it; the Celery workers run edi_ingest's tasks with it.
FROM apache/airflow:3.3.2-python3.11

# Why not `pip install .[airflow]`: a regular install copies schemas/, transforms/ and
# validators/ into site-packages under those bare names (PyPI's unrelated `validators` shares
# one), and the project is only ever installed editable (setup.cfg). The repository is copied
# as it is and its root put on PYTHONPATH, exactly as in development (the repository root is the
# import root); pip installs only the dependencies setup.cfg lists, pinned by constraints.txt,
# with Airflow itself held at the image's version.
COPY --chown=airflow:0 . /opt/cnss-edi
ENV PYTHONPATH=/opt/cnss-edi
RUN python -c "import configparser as c; p = c.ConfigParser(); p.read('/opt/cnss-edi/setup.cfg'); print(p['options']['install_requires'])" > /tmp/requirements.txt \
 && pip install --no-cache-dir -c /opt/cnss-edi/constraints.txt "apache-airflow==3.3.2" -r /tmp/requirements.txt
